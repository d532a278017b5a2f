// Package configfile applies kubox's YAML config files (/etc/kubox/config.yaml
// and its config.yaml.d/*.yaml drop-ins) to the flags of a urfave/cli command,
// filling in every flag the command line left unset.
//
// Keys are the command's flag names or aliases. Later files replace earlier
// values key by key (a list replaces a list; it is not appended). A null value
// (`key:` with nothing after it) drops what earlier files said, so the flag
// keeps its default; so does an empty list.
package configfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"
)

// Files returns the config files to read for the main path: path itself (if it exists) then
// path+".d/*.yaml" sorted (if the directory exists). explicit=true means the user passed --config:
// then a missing `path` is an error ("config file X: no such file; check --config").
func Files(path string, explicit bool) ([]string, error) {
	if path == "" {
		if explicit {
			return nil, errors.New("config file path is empty; check --config")
		}
		return nil, nil
	}

	var files []string
	info, err := os.Stat(path)
	switch {
	case err == nil && info.IsDir():
		return nil, fmt.Errorf("config file %s: is a directory, not a file", path)
	case err == nil:
		files = append(files, path)
	case errors.Is(err, fs.ErrNotExist):
		if explicit {
			return nil, fmt.Errorf("config file %s: no such file; check --config", path)
		}
	default:
		return nil, fmt.Errorf("config file %s: %v", path, pathErr(err))
	}

	dir := path + ".d"
	entries, err := os.ReadDir(dir) // sorted by name, which is the override order
	if errors.Is(err, fs.ErrNotExist) {
		return files, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config directory %s: %v", dir, pathErr(err))
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		// Stat rather than e.IsDir so symlinked drop-ins count as the files they point to.
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("config file %s: %v", p, pathErr(err))
		}
		if st.IsDir() {
			continue
		}
		files = append(files, p)
	}
	return files, nil
}

// Apply reads files in order and sets, on the urfave/cli context, every flag that is not already set
// on the command line (ctx.IsSet(name) false before Apply started). Keys are matched against the
// command's flags (ctx.Command.Flags) by their Name and Aliases. cmdName is used in messages
// (e.g. "kubox server").
//
// Values go through ctx.Set, i.e. the flag's own Value.Set, so flags bound to a
// Destination see them too. A flag set from an environment variable counts as set.
// All files are checked before any flag is changed.
func Apply(ctx *cli.Context, cmdName string, files []string) error {
	return apply(ctx, cmdName, files, false)
}

// ApplyOwn is Apply for a command that shares the config files of others
// (killall reads the data dir of the server's config.yaml): keys that are
// not its flags are skipped instead of refused.
func ApplyOwn(ctx *cli.Context, cmdName string, files []string) error {
	return apply(ctx, cmdName, files, true)
}

func apply(ctx *cli.Context, cmdName string, files []string, skipUnknown bool) error {
	if ctx == nil || ctx.Command == nil {
		return fmt.Errorf("config files for %q: no command context to apply them to", cmdName)
	}

	var (
		byName   = map[string]flagInfo{} // every name and alias
		order    []string                // primary names, in declaration order
		allNames []string                // candidates for "did you mean"
		fromCLI  = map[string]bool{}     // by primary name
	)
	for _, f := range ctx.Command.Flags {
		// urfave adds --help to every command; "help: true" in a file is a mistake, not a setting.
		if f == cli.HelpFlag {
			continue
		}
		names := f.Names()
		if len(names) == 0 {
			continue
		}
		info := flagInfo{name: names[0], kind: flagKind(f)}
		order = append(order, info.name)
		for _, n := range names {
			byName[n] = info
			allNames = append(allNames, n)
			// Record this before any ctx.Set below, which would make IsSet true.
			if ctx.IsSet(n) {
				fromCLI[info.name] = true
			}
		}
	}

	// Merge first so a later file replaces a list instead of appending to it.
	merged := map[string]setting{}
	for _, file := range files {
		got, err := readFile(file, cmdName, byName, allNames, skipUnknown)
		if err != nil {
			return err
		}
		for name, s := range got {
			if s.clear {
				delete(merged, name)
			} else {
				merged[name] = s
			}
		}
	}

	for _, name := range order {
		s, ok := merged[name]
		if !ok || fromCLI[name] {
			continue
		}
		for _, v := range s.values {
			if err := ctx.Set(name, v); err != nil {
				return fmt.Errorf("config file %s: key %q: invalid value %q: %v", s.file, s.key, v, err)
			}
		}
	}
	return nil
}

// kind is what a flag accepts from YAML.
type kind int

const (
	kindScalar   kind = iota // flag type not known here: any scalar, checked by the flag's Set
	kindString               // also accepts numbers and booleans, as written
	kindInt                  //
	kindUint                 //
	kindFloat                //
	kindBool                 //
	kindDuration             //
	kindStrings              // one scalar or a list of scalars
	kindList                 // numeric slices: like kindStrings, elements checked by Set
)

func (k kind) expected() string {
	switch k {
	case kindString:
		return "a string"
	case kindInt:
		return "an integer"
	case kindUint:
		return "a non-negative integer"
	case kindFloat:
		return "a number"
	case kindBool:
		return "a boolean (true or false)"
	case kindDuration:
		return `a duration such as "90s" or "5m"`
	case kindStrings:
		return "a list of strings or a single string"
	case kindList:
		return "a list of values or a single value"
	default:
		return "a single value"
	}
}

func flagKind(f cli.Flag) kind {
	switch f.(type) {
	case *cli.StringFlag, *cli.PathFlag, *cli.GenericFlag:
		return kindString
	case *cli.IntFlag, *cli.Int64Flag:
		return kindInt
	case *cli.UintFlag, *cli.Uint64Flag:
		return kindUint
	case *cli.Float64Flag:
		return kindFloat
	case *cli.BoolFlag:
		return kindBool
	case *cli.DurationFlag:
		return kindDuration
	case *cli.StringSliceFlag:
		return kindStrings
	case *cli.IntSliceFlag, *cli.Int64SliceFlag, *cli.UintSliceFlag, *cli.Uint64SliceFlag, *cli.Float64SliceFlag:
		return kindList
	default:
		return kindScalar
	}
}

type flagInfo struct {
	name string // primary name; the one passed to ctx.Set
	kind kind
}

// setting is one key of one file, converted to the strings ctx.Set takes.
type setting struct {
	file, key string // for messages: where the value came from, as the user spelled it
	values    []string
	clear     bool // null: forget earlier files' value
}

// readFile parses and checks one file, returning its settings by primary flag name.
func readFile(file, cmdName string, flags map[string]flagInfo, names []string, skipUnknown bool) (map[string]setting, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %v", file, pathErr(err))
	}
	root, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %v", file, err)
	}
	out := map[string]setting{}
	if root == nil {
		return out, nil
	}

	keyFor := map[string]string{} // primary name -> key that set it in this file
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := resolve(root.Content[i]), resolve(root.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("config file %s: line %d: keys must be flag names, got %s", file, k.Line, describe(k))
		}
		key := k.Value
		info, ok := flags[key]
		if !ok && skipUnknown {
			continue
		}
		if !ok {
			msg := fmt.Sprintf("config file %s: unknown key %q (not a flag of %q", file, key, cmdName)
			if s := suggest(key, names); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			return nil, errors.New(msg + ")")
		}
		// yaml.v3 only rejects duplicate keys when decoding into Go values, not into Nodes.
		if prev, dup := keyFor[info.name]; dup {
			if prev == key {
				return nil, fmt.Errorf("config file %s: key %q appears more than once", file, key)
			}
			return nil, fmt.Errorf("config file %s: keys %q and %q set the same flag; keep one", file, prev, key)
		}
		keyFor[info.name] = key

		s := setting{file: file, key: key}
		if isNull(v) {
			s.clear = true
		} else if s.values, err = convert(v, info.kind); err != nil {
			return nil, fmt.Errorf("config file %s: key %q: %v", file, key, err)
		}
		out[info.name] = s
	}
	return out, nil
}

// parse returns the top-level mapping, or nil for a file with no settings.
func parse(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, invalidYAML(err)
	}
	// A second document would otherwise be silently ignored.
	for {
		var extra yaml.Node
		err := dec.Decode(&extra)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, invalidYAML(err)
		}
		if !isNull(docRoot(&extra)) {
			return nil, errors.New("holds more than one YAML document (---); put all keys in one mapping")
		}
	}

	root := docRoot(&doc)
	if isNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("top level must be a mapping of flag names to values, got %s", describe(root))
	}
	return root, nil
}

func invalidYAML(err error) error {
	// The parser's messages read "yaml: line N: ..."; our prefix already says YAML.
	return fmt.Errorf("not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
}

func docRoot(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil
		}
		return resolve(doc.Content[0])
	}
	return resolve(doc)
}

// resolve follows *alias references to the anchored node.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// convert checks n against what the flag accepts and returns the strings for ctx.Set.
func convert(n *yaml.Node, k kind) ([]string, error) {
	mismatch := func() error { return fmt.Errorf("expected %s, got %s", k.expected(), describe(n)) }

	if k == kindStrings || k == kindList {
		switch n.Kind {
		case yaml.ScalarNode:
			return []string{n.Value}, nil
		case yaml.SequenceNode:
			vals := make([]string, 0, len(n.Content))
			for i, e := range n.Content {
				e = resolve(e)
				if e.Kind != yaml.ScalarNode || isNull(e) {
					return nil, fmt.Errorf("expected %s, got a list whose item %d is %s", k.expected(), i+1, describe(e))
				}
				vals = append(vals, e.Value)
			}
			return vals, nil
		}
		return nil, mismatch()
	}

	if n.Kind != yaml.ScalarNode {
		return nil, mismatch()
	}
	tag := n.ShortTag()
	switch k {
	case kindString, kindScalar:
		// The text as written, so "1.20" stays "1.20" rather than becoming 1.2.
		return []string{n.Value}, nil
	case kindBool:
		var b bool
		if tag != "!!bool" || n.Decode(&b) != nil {
			return nil, mismatch()
		}
		return []string{strconv.FormatBool(b)}, nil
	case kindInt, kindUint:
		s, ok := integerText(n)
		if !ok || (k == kindUint && strings.HasPrefix(s, "-")) {
			return nil, mismatch()
		}
		return []string{s}, nil
	case kindFloat:
		var f float64
		if (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil {
			return nil, mismatch()
		}
		return []string{strconv.FormatFloat(f, 'g', -1, 64)}, nil
	case kindDuration:
		if tag != "!!str" {
			return nil, mismatch()
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			return nil, mismatch()
		}
		return []string{n.Value}, nil
	}
	return nil, mismatch()
}

// integerText accepts a YAML integer, or a float with no fractional part (6444.0),
// and returns it in decimal.
func integerText(n *yaml.Node) (string, bool) {
	switch n.ShortTag() {
	case "!!int":
		var i int64
		if n.Decode(&i) == nil {
			return strconv.FormatInt(i, 10), true
		}
		var u uint64
		if n.Decode(&u) == nil {
			return strconv.FormatUint(u, 10), true
		}
		// Too big for 64 bits: pass it on so the flag reports "out of range".
		return n.Value, true
	case "!!float":
		var f float64
		if n.Decode(&f) != nil || f != math.Trunc(f) || math.Abs(f) >= 1<<63 {
			return "", false
		}
		return strconv.FormatInt(int64(f), 10), true
	}
	return "", false
}

// describe names a value's YAML type for "got ..." in messages.
func describe(n *yaml.Node) string {
	if n == nil {
		return "null"
	}
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		switch tag := n.ShortTag(); tag {
		case "!!str":
			return fmt.Sprintf("string %q", n.Value)
		case "!!int":
			return "integer " + n.Value
		case "!!float":
			return "number " + n.Value
		case "!!bool":
			return "boolean " + n.Value
		case "!!null":
			return "null"
		default:
			return fmt.Sprintf("%s %q", strings.TrimLeft(tag, "!"), n.Value)
		}
	}
	return "an unsupported YAML node"
}

// suggest returns the name closest to key by edit distance, if within 3 edits.
func suggest(key string, names []string) string {
	best, bestDist := "", 4
	for _, name := range names {
		if d := editDistance(key, name); d < bestDist {
			best, bestDist = name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// pathErr drops the *fs.PathError wrapper, whose path the caller already prints.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
