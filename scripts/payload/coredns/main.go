// Command coredns is the cluster DNS server kubox carries in its payload:
// CoreDNS with only the plugins a kubox cluster's Corefile uses, which keeps
// the executable (and so the kubox binary) small.
//
// A plugin is compiled in by importing its package, whose init registers its
// setup function; it is usable in a Corefile only when its directive is also
// in dnsserver.Directives, whose order is the order in which the plugins see
// a query. That order below follows upstream CoreDNS's plugin.cfg; keep it so
// when adding a plugin. `import` (as in `import /etc/coredns/custom/*.override`)
// is handled by the Corefile parser itself and needs no plugin.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics" // directive "prometheus"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

// directives lists the compiled-in plugins in execution order: each one sees
// a query before those after it.
var directives = []string{
	"reload",
	"ready",
	"health",
	"prometheus",
	"errors",
	"log",
	"loadbalance",
	"cache",
	"hosts",
	"kubernetes",
	"loop",
	"forward",
}

func main() {
	// The server type reads Directives when a Corefile is parsed, which
	// happens in Run, after every init has run.
	dnsserver.Directives = directives
	coremain.Run()
}
