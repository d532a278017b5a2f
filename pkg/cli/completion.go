package cli

import (
	"fmt"
	"io"

	ucli "github.com/urfave/cli/v2"
)

// completionCommand prints a shell completion script. The bash and zsh
// scripts ask kubox itself for the candidates (urfave/cli's
// --generate-bash-completion, enabled in newApp), so they stay true as
// commands and flags change; fish gets a static script generated from the
// command tree.
func completionCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script for bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		BashComplete: func(c *ucli.Context) {
			for _, s := range []string{"bash", "zsh", "fish"} {
				fmt.Fprintln(c.App.Writer, s)
			}
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("give one shell: kubox completion bash, zsh or fish")
			}
			return writeCompletion(c.App, c.Args().First(), c.App.Writer)
		},
	}
}

// writeCompletion writes shell's completion script for app to w.
func writeCompletion(app *ucli.App, shell string, w io.Writer) error {
	switch shell {
	case "bash":
		_, err := io.WriteString(w, bashCompletion)
		return err
	case "zsh":
		_, err := io.WriteString(w, zshCompletion)
		return err
	case "fish":
		script, err := app.ToFishCompletion()
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, script)
		return err
	}
	return fmt.Errorf("unknown shell %q: give bash, zsh or fish", shell)
}

// bashCompletion hands kubox the words before the cursor (and the current
// one when it starts with "-": urfave/cli then lists the flags it could
// begin) followed by --generate-bash-completion, and keeps the candidates
// that start with the current word. With no candidate, bash completes file
// names, as after a flag that takes a path.
const bashCompletion = `# bash completion for kubox.
#   source <(kubox completion bash)
# or save it as /usr/share/bash-completion/completions/kubox.
_kubox_complete() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	local -a args=("${COMP_WORDS[@]:1:COMP_CWORD-1}")
	[[ $cur == -* ]] && args+=("$cur")
	local IFS=$'\n'
	# shellcheck disable=SC2207 # one candidate a line, split on IFS
	COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" "${args[@]}" --generate-bash-completion 2>/dev/null)" -- "$cur"))
}
complete -o bashdefault -o default -F _kubox_complete kubox
`

// zshCompletion asks kubox the same way; it works sourced and as an
// autoloaded _kubox file in $fpath.
const zshCompletion = `#compdef kubox
# zsh completion for kubox.
#   source <(kubox completion zsh)
# or save it as _kubox in a directory of $fpath.
_kubox() {
	local -a args candidates
	args=("${(@)words[2,CURRENT-1]}")
	[[ ${words[CURRENT]} == -* ]] && args+=("${words[CURRENT]}")
	candidates=("${(@f)$("${words[1]}" "${(@)args}" --generate-bash-completion 2>/dev/null)}")
	candidates=(${candidates:#})
	if (( ${#candidates} )); then
		compadd -a candidates
	else
		_files
	fi
}
if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
	_kubox "$@"
else
	compdef _kubox kubox
fi
`
