// Package addons is the registry of kubox's built-in add-ons. An add-on is
// one entry here: its name (which is also its manifest template's, in
// manifests/), and the controllers it runs in-process beside the control
// plane and on every node. --disable NAME turns all of it off at once, and a
// new add-on is one package plus one line in All.
package addons

import (
	"fmt"

	"github.com/kubox-io/kubox/pkg/component"
	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/config/paths"
	"github.com/kubox-io/kubox/pkg/logging"
	"github.com/kubox-io/kubox/pkg/pki"
)

// ServerEnv is what an add-on's server-side controllers are built from.
type ServerEnv struct {
	Config *config.Server
	Certs  pki.ControlPlane
	CAPEM  []byte // the server CA bundle
	Log    *logging.Logger
	// LeaderElect tells, once the datastore runs, whether other servers
	// share it, so that a controller that must act once holds a lease.
	LeaderElect func() bool
}

// NodeEnv is what an add-on's node-side controllers are built from.
type NodeEnv struct {
	Agent      *config.Agent
	Paths      paths.Paths
	Kubeconfig string // the node's own identity
	Log        *logging.Logger
}

// Addon is one built-in add-on.
type Addon struct {
	Name string
	// Server builds the controllers that run beside the control plane.
	Server func(ServerEnv) ([]component.Component, error)
	// Node builds the controllers that run on every node.
	Node func(NodeEnv) []component.Component
	// NodeOff builds what runs on every node while the add-on is off, to
	// take back what it did when it was on.
	NodeOff func(NodeEnv) []component.Component
	// KeepManifest keeps the manifest applied while the add-on is off:
	// custom resource definitions whose objects must outlive their
	// controller.
	KeepManifest bool
}

// All is every built-in add-on, in start order.
func All() []Addon {
	return []Addon{
		{Name: "coredns", Server: corednsCustom},
		{Name: "local-storage", Node: localStorage},
		{Name: "servicelb", Node: serviceLB, NodeOff: serviceLBOff},
		{Name: "metrics-server", Server: metricsServer},
		{Name: "helm-controller", Server: helmController, KeepManifest: true},
	}
}

// ServerComponents builds the server-side controllers of the add-ons not
// disabled.
func ServerComponents(env ServerEnv, disabled map[string]bool) ([]component.Component, error) {
	var out []component.Component
	for _, a := range All() {
		if disabled[a.Name] || a.Server == nil {
			continue
		}
		comps, err := a.Server(env)
		if err != nil {
			return nil, fmt.Errorf("add-on %s: %w", a.Name, err)
		}
		out = append(out, comps...)
	}
	return out, nil
}

// NodeComponents builds the node-side controllers of the add-ons not
// disabled, and the clean-up of those that are.
func NodeComponents(env NodeEnv, disabled map[string]bool) []component.Component {
	var out []component.Component
	for _, a := range All() {
		build := a.Node
		if disabled[a.Name] {
			build = a.NodeOff
		}
		if build != nil {
			out = append(out, build(env)...)
		}
	}
	return out
}

// ManifestsOff is the add-ons whose manifests leave the cluster: the
// disabled ones, but those that keep their manifest.
func ManifestsOff(disabled map[string]bool) map[string]bool {
	out := map[string]bool{}
	for _, a := range All() {
		if disabled[a.Name] && !a.KeepManifest {
			out[a.Name] = true
		}
	}
	return out
}

// Names lists the registered add-ons.
func Names() []string {
	var names []string
	for _, a := range All() {
		names = append(names, a.Name)
	}
	return names
}

// restartable supervises kubox's own controllers: one that fails is
// started again (see component.Restart).
func restartable(c component.Component, log *logging.Logger) component.Component {
	return &component.Restart{Inner: c, Log: log}
}
