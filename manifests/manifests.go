// Package manifests embeds the add-on manifests kubox deploys into every
// cluster. It holds none yet; the add-ons land with their own change.
package manifests

import "embed"

// FS holds every *.yaml file of this directory.
//
//go:embed *.go
var FS embed.FS
