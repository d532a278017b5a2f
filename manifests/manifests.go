// Package manifests will embed the add-on manifests kubox deploys into every
// cluster (CoreDNS, local storage, service load balancer, metrics). It is a
// Go package so that a plain `go build` embeds them with //go:embed.
package manifests
