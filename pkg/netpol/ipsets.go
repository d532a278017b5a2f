package netpol

import (
	"slices"
	"strings"

	"github.com/cloudnativelabs/kube-router/v2/pkg/utils"
	v1core "k8s.io/api/core/v1"
)

// Set name prefixes of kube-router's network policy controller: the only
// sets it may rewrite or destroy.
var ownSetPrefixes = []string{"KUBE-SRC-", "KUBE-DST-"}

// familySets is the ipset handler kubox gives kube-router's controller for
// one address family, around kube-router's own handler. It mends two
// faults of kube-router v2.1.0 in a dual-stack cluster:
//
//   - The IPv6 handler names its sets "inet6:KUBE-…", but the controller's
//     ip6tables rules name them without that prefix, so ip6tables-restore
//     fails on every policy with a pod or namespace peer and IPv6 keeps the
//     rules of before. Here IPv6 sets keep the controller's own names (the
//     names hash the family in, so they never meet an IPv4 set's) and are
//     made with "family inet6".
//   - Each handler's Save loads every set on the host, and its Restore
//     writes them all back: the IPv6 handler rewrote the IPv4 sets with
//     what they held at its last Save, which undid the IPv4 handler's
//     update. Here a handler keeps only its own family's policy sets.
//
// Sets made by the unmended handler ("inet6:KUBE-SRC-…") are kept as the
// IPv6 handler's, so that the controller's clean-up destroys them.
type familySets struct {
	*utils.IPSet
	v6 bool
}

func newFamilySets(family v1core.IPFamily) (*familySets, error) {
	// Unprefixed names: kube-router's handler prefixes only when told IPv6.
	inner, err := utils.NewIPSet(false)
	if err != nil {
		return nil, err
	}
	return &familySets{IPSet: inner, v6: family == v1core.IPv6Protocol}, nil
}

// Save loads the host's sets, then forgets those not this handler's.
func (f *familySets) Save() error {
	if err := f.IPSet.Save(); err != nil {
		return err
	}
	sets := f.IPSet.Sets()
	for name, set := range sets {
		if !f.owns(name, set.Options) {
			delete(sets, name)
		}
	}
	return nil
}

// owns: a policy set of this handler's family.
func (f *familySets) owns(name string, options []string) bool {
	if legacy, ok := strings.CutPrefix(name, utils.IPv6SetPrefix+":"); ok {
		return f.v6 && ownSet(legacy)
	}
	return ownSet(name) && isV6(options) == f.v6
}

func ownSet(name string) bool {
	for _, p := range ownSetPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// isV6 reads the family from a set's create options (as `ipset save`
// prints them, or as the handler made them).
func isV6(options []string) bool {
	i := slices.Index(options, "family")
	return i >= 0 && i+1 < len(options) && options[i+1] == utils.FamillyInet6
}

// RefreshSet updates a set's entries; a new IPv6 set gets its family.
func (f *familySets) RefreshSet(name string, entries [][]string, setType string) {
	f.IPSet.RefreshSet(name, entries, setType)
	if set := f.IPSet.Get(name); f.v6 && set != nil && !isV6(set.Options) {
		set.Options = append(set.Options, "family", utils.FamillyInet6)
	}
}

// Create makes a set on the host; an IPv6 one with its family.
func (f *familySets) Create(name string, options ...string) (*utils.Set, error) {
	if f.v6 && !isV6(options) {
		options = append(slices.Clone(options), "family", utils.FamillyInet6)
	}
	return f.IPSet.Create(name, options...)
}

// ipSetHandlers are the handlers for the families enabled in kr's terms.
func ipSetHandlers(v4, v6 bool) (map[v1core.IPFamily]utils.IPSetHandler, error) {
	m := map[v1core.IPFamily]utils.IPSetHandler{}
	for _, fam := range []struct {
		on bool
		f  v1core.IPFamily
	}{{v4, v1core.IPv4Protocol}, {v6, v1core.IPv6Protocol}} {
		if !fam.on {
			continue
		}
		h, err := newFamilySets(fam.f)
		if err != nil {
			return nil, err
		}
		m[fam.f] = h
	}
	return m, nil
}
