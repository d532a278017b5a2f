package crictl

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
	"google.golang.org/protobuf/protoadapt"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-client/pkg/logs"
	"k8s.io/kubectl/pkg/util/term"
	"sigs.k8s.io/cri-tools/pkg/common"
)

func (cl *clients) ctx(c *ucli.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Context, cl.timeout)
}

func (cl *clients) versionCommand() *ucli.Command {
	return &ucli.Command{Name: "version", Usage: "the runtime's name and version", Action: func(c *ucli.Context) error {
		ctx, cancel := cl.ctx(c)
		defer cancel()
		v, err := cl.runtime.Version(ctx, "v1")
		if err != nil {
			return err
		}
		w := c.App.Writer
		fmt.Fprintf(w, "Version:  %s\nRuntimeName:  %s\nRuntimeVersion:  %s\nRuntimeApiVersion:  %s\n",
			v.Version, v.RuntimeName, v.RuntimeVersion, v.RuntimeApiVersion)
		return nil
	}}
}

func (cl *clients) infoCommand() *ucli.Command {
	return &ucli.Command{Name: "info", Usage: "the runtime's status and configuration", Action: func(c *ucli.Context) error {
		ctx, cancel := cl.ctx(c)
		defer cancel()
		st, err := cl.runtime.Status(ctx, true)
		if err != nil {
			return err
		}
		return statusJSON(c.App.Writer, st.Status, st.Info)
	}}
}

func (cl *clients) psCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "ps",
		Usage: "list containers (running ones unless --all)",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "every container, exited ones too"},
			&ucli.StringFlag{Name: "name", Usage: "only containers whose name matches this regular expression"},
			&ucli.StringFlag{Name: "pod", Aliases: []string{"p"}, Usage: "only the containers of the pod with this ID (or ID prefix)"},
			&ucli.StringFlag{Name: "state", Aliases: []string{"s"}, Usage: "only containers in this state: created, running, exited, unknown"},
			&ucli.BoolFlag{Name: "latest", Aliases: []string{"l"}, Usage: "only the most recently created container"},
			quietFlag, outputFlag,
		},
		Action: func(c *ucli.Context) error {
			if err := checkOutput(c); err != nil {
				return err
			}
			ctx, cancel := cl.ctx(c)
			defer cancel()
			filter := &runtimeapi.ContainerFilter{}
			if s := c.String("state"); s != "" {
				v, ok := runtimeapi.ContainerState_value["CONTAINER_"+strings.ToUpper(s)]
				if !ok {
					return fmt.Errorf("unknown --state %q: give created, running, exited or unknown", s)
				}
				filter.State = &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState(v)}
			} else if !c.Bool("all") && !c.Bool("latest") {
				filter.State = &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}
			}
			name, err := optionalRegexp("name", c.String("name"))
			if err != nil {
				return err
			}
			all, err := cl.runtime.ListContainers(ctx, filter)
			if err != nil {
				return err
			}
			var list []*runtimeapi.Container
			for _, ctr := range all {
				if !name.MatchString(ctr.GetMetadata().GetName()) {
					continue
				}
				if p := c.String("pod"); p != "" && !strings.HasPrefix(ctr.PodSandboxId, p) {
					continue
				}
				list = append(list, ctr)
			}
			sort.Slice(list, func(i, j int) bool { return list[i].CreatedAt > list[j].CreatedAt })
			if c.Bool("latest") && len(list) > 1 {
				list = list[:1]
			}
			return cl.printContainers(c, ctx, list)
		},
	}
}

func (cl *clients) printContainers(c *ucli.Context, ctx context.Context, list []*runtimeapi.Container) error {
	if done, err := listedAs(c, "containers", list, (*runtimeapi.Container).GetId); done {
		return err
	}
	w := c.App.Writer
	// Pod names and namespaces, from one list of the sandboxes.
	pods := map[string]*runtimeapi.PodSandbox{}
	if sandboxes, err := cl.runtime.ListPodSandbox(ctx, nil); err == nil {
		for _, p := range sandboxes {
			pods[p.Id] = p
		}
	}
	t := table(w)
	row(t, "CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD", "NAMESPACE")
	for _, ctr := range list {
		image := ctr.GetImage().GetUserSpecifiedImage()
		if image == "" {
			image = ctr.GetImage().GetImage()
		}
		if strings.HasPrefix(image, "sha256:") {
			image = shortID(image)
		}
		state := strings.TrimPrefix(ctr.State.String(), "CONTAINER_")
		row(t, shortID(ctr.Id), image, ago(ctr.CreatedAt), state, ctr.GetMetadata().GetName(),
			fmt.Sprint(ctr.GetMetadata().GetAttempt()), shortID(ctr.PodSandboxId),
			pods[ctr.PodSandboxId].GetMetadata().GetName(), pods[ctr.PodSandboxId].GetMetadata().GetNamespace())
	}
	return t.Flush()
}

// containerID resolves an ID prefix, as crictl accepts one.
func (cl *clients) containerID(ctx context.Context, prefix string) (string, error) {
	list, err := cl.runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{})
	if err != nil {
		return "", err
	}
	ids := make([]string, 0, len(list))
	for _, ctr := range list {
		ids = append(ids, ctr.Id)
	}
	return byPrefix("container", prefix, ids, "ps -a")
}

func (cl *clients) inspectCommand() *ucli.Command {
	return &ucli.Command{Name: "inspect", Usage: "a container's status, as JSON", ArgsUsage: "CONTAINER-ID",
		Action: cl.inspectAction("container ID", cl.containerID, func(ctx context.Context, id string) (protoadapt.MessageV1, map[string]string, error) {
			st, err := cl.runtime.ContainerStatus(ctx, id, true)
			return st.GetStatus(), st.GetInfo(), err
		})}
}

func (cl *clients) logsCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "logs",
		Usage:     "a container's log",
		ArgsUsage: "CONTAINER-ID",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new lines until the container stops"},
			&ucli.Int64Flag{Name: "tail", Value: -1, Usage: "only this many lines from the end"},
			&ucli.BoolFlag{Name: "timestamps", Aliases: []string{"t"}, Usage: "each line's timestamp"},
			&ucli.BoolFlag{Name: "previous", Aliases: []string{"p"}, Usage: "the log of the container's previous run"},
			&ucli.DurationFlag{Name: "since", Usage: "only lines newer than this, e.g. 10m"},
		},
		Action: func(c *ucli.Context) error {
			arg, err := oneArg(c, "container ID")
			if err != nil {
				return err
			}
			ctx, cancel := cl.ctx(c)
			id, err := cl.containerID(ctx, arg)
			if err != nil {
				cancel()
				return err
			}
			st, err := cl.runtime.ContainerStatus(ctx, id, false)
			cancel()
			if err != nil {
				return err
			}
			path := st.GetStatus().GetLogPath()
			if path == "" {
				return fmt.Errorf("container %s has no log file", shortID(id))
			}
			if c.Bool("previous") {
				// The kubelet names logs <attempt>.log; the previous run's is one less.
				attempt := st.GetStatus().GetMetadata().GetAttempt()
				if attempt == 0 {
					return fmt.Errorf("container %s has no previous run", shortID(id))
				}
				path = strings.TrimSuffix(path, fmt.Sprintf("%d.log", attempt)) + fmt.Sprintf("%d.log", attempt-1)
			}
			opts := &logs.LogOptions{Follow: c.Bool("follow"), Timestamp: c.Bool("timestamps")}
			if n := c.Int64("tail"); n >= 0 {
				opts.TailLines = &n
			}
			if d := c.Duration("since"); d > 0 {
				opts.Since = time.Now().Add(-d)
			}
			return logs.ReadLogs(c.Context, path, id, opts, cl.runtime, c.App.Writer, c.App.ErrWriter)
		},
	}
}

func (cl *clients) execCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "exec",
		Usage:     "run a command in a running container",
		ArgsUsage: "CONTAINER-ID COMMAND [ARG...]",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep stdin open"},
			&ucli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a terminal"},
			&ucli.StringFlag{Name: "transport", Value: common.TransportSpdy, Usage: "streaming protocol: spdy or websocket"},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() < 2 {
				return fmt.Errorf("give a container ID and a command; see 'crictl exec --help'")
			}
			ctx, cancel := cl.ctx(c)
			id, err := cl.containerID(ctx, c.Args().First())
			if err != nil {
				cancel()
				return err
			}
			tty, stdin := c.Bool("tty"), c.Bool("interactive")
			resp, err := cl.runtime.Exec(ctx, &runtimeapi.ExecRequest{
				ContainerId: id, Cmd: c.Args().Tail(), Tty: tty, Stdin: stdin, Stdout: true, Stderr: !tty,
			})
			cancel()
			if err != nil {
				return err
			}
			u, err := url.Parse(resp.Url)
			if err != nil {
				return err
			}
			exec, err := common.GetExecutor(c.String("transport"), u, &rest.TLSClientConfig{Insecure: true})
			if err != nil {
				return err
			}
			t := term.TTY{In: os.Stdin, Out: os.Stdout, Raw: tty}
			opts := remotecommand.StreamOptions{Stdout: c.App.Writer, Tty: tty}
			if stdin {
				opts.Stdin = c.App.Reader
			}
			if !tty {
				opts.Stderr = c.App.ErrWriter
			} else {
				if q := t.MonitorSize(t.GetSize()); q != nil {
					opts.TerminalSizeQueue = sizeQueue{q}
				}
			}
			return t.Safe(func() error { return exec.StreamWithContext(c.Context, opts) })
		},
	}
}

func (cl *clients) stopCommand() *ucli.Command {
	return &ucli.Command{Name: "stop", Usage: "stop running containers", ArgsUsage: "CONTAINER-ID...",
		Flags: []ucli.Flag{&ucli.Int64Flag{Name: "timeout", Aliases: []string{"t"}, Value: 10, Usage: "seconds to wait before killing"}},
		Action: func(c *ucli.Context) error {
			grace := c.Int64("timeout")
			return cl.each(c, "container", time.Duration(grace)*time.Second, cl.containerID, func(ctx context.Context, id string) error {
				return cl.runtime.StopContainer(ctx, id, grace)
			})
		}}
}

func (cl *clients) rmCommand() *ucli.Command {
	return &ucli.Command{Name: "rm", Usage: "remove containers", ArgsUsage: "CONTAINER-ID...",
		Action: func(c *ucli.Context) error {
			return cl.each(c, "container", 0, cl.containerID, cl.runtime.RemoveContainer)
		}}
}

// each runs do for every object the arguments name (IDs or ID prefixes,
// resolved by find), with the request time limit plus grace, and prints
// each ID done, as crictl does.
func (cl *clients) each(c *ucli.Context, what string, grace time.Duration,
	find func(context.Context, string) (string, error), do func(context.Context, string) error) error {
	if c.NArg() == 0 {
		return fmt.Errorf("give one or more %s IDs; see 'crictl %s --help'", what, c.Command.Name)
	}
	for _, arg := range c.Args().Slice() {
		ctx, cancel := context.WithTimeout(c.Context, cl.timeout+grace)
		id, err := find(ctx, arg)
		if err == nil {
			err = do(ctx, id)
		}
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", arg, err)
		}
		fmt.Fprintln(c.App.Writer, id)
	}
	return nil
}

// sizeQueue hands kubectl's terminal size updates to client-go's streamer.
type sizeQueue struct{ q term.TerminalSizeQueue }

func (s sizeQueue) Next() *remotecommand.TerminalSize {
	size := s.q.Next()
	if size == nil {
		return nil
	}
	return &remotecommand.TerminalSize{Width: size.Width, Height: size.Height}
}
