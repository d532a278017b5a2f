package crictl

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	ucli "github.com/urfave/cli/v2"
	"google.golang.org/protobuf/protoadapt"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func (cl *clients) podsCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "pods",
		Usage: "list pod sandboxes",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "name", Usage: "only pods whose name matches this regular expression"},
			&ucli.StringFlag{Name: "namespace", Usage: "only pods whose namespace matches this regular expression"},
			&ucli.StringFlag{Name: "state", Aliases: []string{"s"}, Usage: "only pods in this state: ready or notready"},
			quietFlag, outputFlag,
		},
		Action: func(c *ucli.Context) error {
			if err := checkOutput(c); err != nil {
				return err
			}
			ctx, cancel := cl.ctx(c)
			defer cancel()
			filter := &runtimeapi.PodSandboxFilter{}
			switch s := strings.ToLower(c.String("state")); s {
			case "":
			case "ready", "notready":
				filter.State = &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}
				if s == "notready" {
					filter.State.State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
				}
			default:
				return fmt.Errorf("unknown --state %q: give ready or notready", s)
			}
			name, err := optionalRegexp("name", c.String("name"))
			if err != nil {
				return err
			}
			namespace, err := optionalRegexp("namespace", c.String("namespace"))
			if err != nil {
				return err
			}
			all, err := cl.runtime.ListPodSandbox(ctx, filter)
			if err != nil {
				return err
			}
			var list []*runtimeapi.PodSandbox
			for _, p := range all {
				if name.MatchString(p.GetMetadata().GetName()) && namespace.MatchString(p.GetMetadata().GetNamespace()) {
					list = append(list, p)
				}
			}
			sort.Slice(list, func(i, j int) bool { return list[i].CreatedAt > list[j].CreatedAt })
			if done, err := listedAs(c, "items", list, (*runtimeapi.PodSandbox).GetId); done {
				return err
			}
			t := table(c.App.Writer)
			row(t, "POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME")
			for _, p := range list {
				state := strings.TrimPrefix(p.State.String(), "SANDBOX_")
				state = strings.ToUpper(state[:1]) + strings.ToLower(state[1:])
				handler := p.RuntimeHandler
				if handler == "" {
					handler = "(default)"
				}
				row(t, shortID(p.Id), ago(p.CreatedAt), state, p.GetMetadata().GetName(),
					p.GetMetadata().GetNamespace(), fmt.Sprint(p.GetMetadata().GetAttempt()), handler)
			}
			return t.Flush()
		},
	}
}

// optionalRegexp compiles a filter flag's value; empty matches everything.
func optionalRegexp(flag, expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	return re, nil
}

// podID resolves a pod sandbox ID prefix.
func (cl *clients) podID(ctx context.Context, prefix string) (string, error) {
	list, err := cl.runtime.ListPodSandbox(ctx, nil)
	if err != nil {
		return "", err
	}
	ids := make([]string, 0, len(list))
	for _, p := range list {
		ids = append(ids, p.Id)
	}
	return byPrefix("pod", prefix, ids, "pods")
}

func (cl *clients) inspectpCommand() *ucli.Command {
	return &ucli.Command{Name: "inspectp", Usage: "a pod sandbox's status, as JSON", ArgsUsage: "POD-ID",
		Action: cl.inspectAction("pod ID", cl.podID, func(ctx context.Context, id string) (protoadapt.MessageV1, map[string]string, error) {
			st, err := cl.runtime.PodSandboxStatus(ctx, id, true)
			return st.GetStatus(), st.GetInfo(), err
		})}
}

func (cl *clients) stoppCommand() *ucli.Command {
	return &ucli.Command{Name: "stopp", Usage: "stop pod sandboxes", ArgsUsage: "POD-ID...",
		Action: func(c *ucli.Context) error {
			return cl.each(c, "pod", 0, cl.podID, cl.runtime.StopPodSandbox)
		}}
}

func (cl *clients) rmpCommand() *ucli.Command {
	return &ucli.Command{Name: "rmp", Usage: "remove pod sandboxes", ArgsUsage: "POD-ID...",
		Action: func(c *ucli.Context) error {
			return cl.each(c, "pod", 0, cl.podID, cl.runtime.RemovePodSandbox)
		}}
}
