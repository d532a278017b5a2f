package crictl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	units "github.com/docker/go-units"
	ucli "github.com/urfave/cli/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/protoadapt"
)

// outputFlag is crictl's -o for list commands: table (default) or json.
var outputFlag = &ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table or json"}

// quietFlag is crictl's -q: IDs only.
var quietFlag = &ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only IDs"}

func checkOutput(c *ucli.Context) error {
	if o := c.String("output"); o != "table" && o != "json" {
		return fmt.Errorf("unknown --output %q: give table or json", o)
	}
	return nil
}

// table writes aligned columns, as crictl does.
func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
}

func row(w io.Writer, cols ...string) {
	fmt.Fprintln(w, strings.Join(cols, "\t"))
}

// shortID is the first 13 characters of an ID, without its algorithm.
func shortID(id string) string {
	if _, hex, ok := strings.Cut(id, ":"); ok {
		id = hex
	}
	if len(id) > 13 {
		return id[:13]
	}
	return id
}

// ago says how long ago a CRI timestamp (nanoseconds) was.
func ago(nanos int64) string {
	return units.HumanDuration(time.Since(time.Unix(0, nanos))) + " ago"
}

// protoJSON renders a CRI message as indented JSON.
func protoJSON(m protoadapt.MessageV1) (json.RawMessage, error) {
	return protojson.MarshalOptions{EmitDefaultValues: true, Indent: "  "}.Marshal(protoadapt.MessageV2Of(m))
}

// writeJSON writes v indented; CRI messages inside it go through protoJSON.
func writeJSON(w io.Writer, v any) error {
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", out)
	return err
}

// listJSON writes a list under key, as crictl's -o json does.
func listJSON[T protoadapt.MessageV1](w io.Writer, key string, items []T) error {
	raw := make([]json.RawMessage, 0, len(items))
	for _, it := range items {
		b, err := protoJSON(it)
		if err != nil {
			return err
		}
		raw = append(raw, b)
	}
	return writeJSON(w, map[string]any{key: raw})
}

// statusJSON writes a status and its verbose info (JSON strings from the
// runtime), as crictl's inspect commands do.
func statusJSON(w io.Writer, status protoadapt.MessageV1, info map[string]string) error {
	s, err := protoJSON(status)
	if err != nil {
		return err
	}
	out := map[string]any{"status": s}
	if len(info) > 0 {
		m := map[string]any{}
		for k, v := range info {
			var parsed any
			if json.Unmarshal([]byte(v), &parsed) == nil {
				m[k] = parsed
			} else {
				m[k] = v
			}
		}
		out["info"] = m
	}
	return writeJSON(w, out)
}

// oneArg is the single argument a command takes, or an error naming it.
func oneArg(c *ucli.Context, what string) (string, error) {
	if c.NArg() != 1 {
		return "", fmt.Errorf("give one %s; see 'crictl %s --help'", what, c.Command.Name)
	}
	return c.Args().First(), nil
}

// listedAs prints a list as -o json or -q ask, and says whether it did; a
// table is the caller's.
func listedAs[T protoadapt.MessageV1](c *ucli.Context, key string, items []T, id func(T) string) (bool, error) {
	w := c.App.Writer
	if c.String("output") == "json" {
		return true, listJSON(w, key, items)
	}
	if c.Bool("quiet") {
		for _, it := range items {
			fmt.Fprintln(w, id(it))
		}
		return true, nil
	}
	return false, nil
}

// inspectAction prints the verbose status of the one object the argument
// names (an ID or ID prefix, resolved by find), as crictl's inspect
// commands do.
func (cl *clients) inspectAction(what string, find func(context.Context, string) (string, error),
	status func(ctx context.Context, id string) (protoadapt.MessageV1, map[string]string, error)) ucli.ActionFunc {
	return func(c *ucli.Context) error {
		arg, err := oneArg(c, what)
		if err != nil {
			return err
		}
		ctx, cancel := cl.ctx(c)
		defer cancel()
		id, err := find(ctx, arg)
		if err != nil {
			return err
		}
		st, info, err := status(ctx, id)
		if err != nil {
			return err
		}
		return statusJSON(c.App.Writer, st, info)
	}
}

// byPrefix is the one ID among ids that starts with prefix, or an error
// saying why there is none.
func byPrefix(what, prefix string, ids []string, listCmd string) (string, error) {
	var found []string
	for _, id := range ids {
		if strings.HasPrefix(id, prefix) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("no %s with ID %q; 'crictl %s' lists them", what, prefix, listCmd)
	default:
		return "", fmt.Errorf("%d %ss have IDs starting %q; give more of the ID", len(found), what, prefix)
	}
}
