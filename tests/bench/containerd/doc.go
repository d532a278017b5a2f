// Package containerd pins the stand-alone containerd that the benchmark's
// baseline runs, at the version kubox embeds; its dependencies stay out of
// kubox's own go.mod.
package containerd
