package config

import (
	"fmt"
	"slices"
	"strings"
)

// CheckConfigOptions are the raw flags of `kubox check-config`.
type CheckConfigOptions struct {
	Output  string   // "" for a list, or json
	Require []string // IDs of optional checks the user depends on
	// DisableNetworkPolicy: the node will run with
	// --disable-network-policy, so what network policy needs is optional.
	DisableNetworkPolicy bool
	// Server, if set, is the server this machine will join: its clock is
	// compared with this machine's.
	Server string
}

// Validate checks the output format, and that each --require names one of
// the host's checks (ids, from the host check itself).
func (o CheckConfigOptions) Validate(ids []string) error {
	if o.Output != "" && o.Output != "json" {
		return fmt.Errorf("invalid --output %q: give json, or leave it out for a list", o.Output)
	}
	for _, r := range o.Require {
		if !slices.Contains(ids, r) {
			return fmt.Errorf("invalid --require %q: choose from %s", r, strings.Join(ids, ", "))
		}
	}
	return nil
}
