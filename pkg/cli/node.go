package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	ctrapp "github.com/containerd/containerd/v2/cmd/ctr/app"
	ucli "github.com/urfave/cli/v2"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/join"
	"github.com/kubox-io/kubox/pkg/syssetup"
)

func checkConfigCommand() *ucli.Command {
	o := &config.CheckConfigOptions{}
	require := ucli.NewStringSlice()
	return &ucli.Command{
		Name:         "check-config",
		Usage:        "check that this host can run a kubox node, and say how to fix what is missing",
		OnUsageError: usageError,
		Flags: []ucli.Flag{
			outputFlag(&o.Output),
			&ucli.StringSliceFlag{Name: "require", Destination: require,
				Usage: "an optional check whose ID this node depends on, e.g. wireguard or nftables: missing, it fails too (repeatable)"},
			&ucli.BoolFlag{Name: "disable-network-policy", Destination: &o.DisableNetworkPolicy,
				Usage: "the node will run with --disable-network-policy: what network policy needs (ipset, xt_set) becomes optional"},
			&ucli.StringFlag{Name: "server", Destination: &o.Server,
				Usage: "the server this machine will join, https://<host>:<port>: its clock must agree with this machine's"},
		},
		Action: func(c *ucli.Context) error {
			o.Require = require.Value()
			reqs := append(syssetup.Check(), syssetup.Ports()...)
			if o.Server != "" {
				reqs = append(reqs, clockRequirement(c.Context, o.Server))
			}
			if err := o.Validate(syssetup.IDs(reqs)); err != nil {
				return err
			}
			if !o.DisableNetworkPolicy {
				reqs = syssetup.Require(reqs, syssetup.NetworkPolicyNeeds())
			}
			reqs = syssetup.Require(reqs, o.Require)
			failed := syssetup.Missing(reqs) != nil
			if o.Output == "json" {
				if err := writeJSON(c.App.Writer, checkReport{OK: !failed, Requirements: reqs}); err != nil {
					return err
				}
				if failed {
					return fmt.Errorf("this host cannot run a kubox node yet: fix the requirements with \"fatal\": true and \"ok\": false")
				}
				return nil
			}
			printRequirements(c.App.Writer, reqs)
			if failed {
				return fmt.Errorf("this host cannot run a kubox node yet: fix the FAIL lines above")
			}
			return nil
		},
	}
}

// clockRequirement compares this machine's clock with the server's: a
// joining server (etcd, certificates) or node needs them to agree.
func clockRequirement(ctx context.Context, server string) syssetup.Requirement {
	r := syssetup.Requirement{ID: "clock", Name: "clock agrees with the server's", Fatal: true}
	skew, base, err := join.ClockSkew(ctx, server, 10*time.Second)
	switch {
	case err != nil:
		r.Info = oneLine(err)
		r.Fix = "check --server and that the server runs"
	case skew.Abs() > join.MaxClockSkew:
		r.Info = join.DescribeSkew(skew, base) + "; at most " + join.MaxClockSkew.String() + " apart"
		r.Fix = "sync the clocks (NTP, chrony or systemd-timesyncd)"
	default:
		r.OK, r.Info = true, join.DescribeSkew(skew, base)
	}
	return r
}

// checkReport is check-config's JSON: ok is false when a fatal requirement
// is missing.
type checkReport struct {
	OK           bool                   `json:"ok"`
	Requirements []syssetup.Requirement `json:"requirements"`
}

// printRequirements writes one line per requirement: ok, MISS (optional)
// or FAIL, its name, what was found, and the fix of what is missing.
func printRequirements(w io.Writer, reqs []syssetup.Requirement) {
	for _, r := range reqs {
		mark := "ok  "
		if !r.OK {
			mark = "MISS"
			if r.Fatal {
				mark = "FAIL"
			}
		}
		line := fmt.Sprintf("%s %-16s %s", mark, r.ID, r.Name)
		if r.Info != "" {
			line += " (" + r.Info + ")"
		}
		if !r.OK {
			line += "; fix: " + r.Fix
		}
		fmt.Fprintln(w, line)
	}
}

// Ctr runs containerd's ctr pointed at the node's containerd, found as
// Crictl finds it (args[0] is the program name).
func Ctr(args []string) int {
	if os.Getenv("CONTAINERD_ADDRESS") == "" {
		p, err := nodePaths()
		if err != nil {
			fmt.Fprintf(os.Stderr, "ctr: %s\n", oneLine(err))
			return 1
		}
		os.Setenv("CONTAINERD_ADDRESS", p.ContainerdSocket)
	}
	if os.Getenv("CONTAINERD_NAMESPACE") == "" {
		os.Setenv("CONTAINERD_NAMESPACE", "k8s.io")
	}
	app := ctrapp.New()
	if err := app.Run(context.Background(), append([]string{"ctr"}, args[1:]...)); err != nil {
		fmt.Fprintln(os.Stderr, "ctr:", err)
		return 1
	}
	return 0
}
