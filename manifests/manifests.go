// Package manifests embeds the add-on manifests kubox deploys into every
// cluster. Each <name>.yaml is a Go template rendered with the cluster's
// values (see pkg/deploy.WriteAddons) into <data-dir>/server/manifests.
package manifests

import "embed"

// Addons holds every add-on manifest template.
//
//go:embed *.yaml
var Addons embed.FS
