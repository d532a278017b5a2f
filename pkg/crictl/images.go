package crictl

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/distribution/reference"
	units "github.com/docker/go-units"
	ucli "github.com/urfave/cli/v2"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func (cl *clients) imagesCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "images",
		Aliases:   []string{"image", "img"},
		Usage:     "list images",
		ArgsUsage: "[REPOSITORY[:TAG]]",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "digests", Usage: "a DIGEST column"},
			&ucli.BoolFlag{Name: "pinned", Usage: "a PINNED column: pinned images are never removed by the kubelet's image GC"},
			&ucli.BoolFlag{Name: "no-trunc", Usage: "whole image IDs"},
			quietFlag, outputFlag,
		},
		Action: func(c *ucli.Context) error {
			if err := checkOutput(c); err != nil {
				return err
			}
			ctx, cancel := cl.ctx(c)
			defer cancel()
			var filter *runtimeapi.ImageFilter
			if c.NArg() > 0 {
				filter = &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: c.Args().First()}}
			}
			list, err := cl.images.ListImages(ctx, filter)
			if err != nil {
				return err
			}
			sort.Slice(list, func(i, j int) bool { return firstName(list[i]) < firstName(list[j]) })
			if done, err := listedAs(c, "images", list, (*runtimeapi.Image).GetId); done {
				return err
			}
			header := []string{"IMAGE", "TAG"}
			if c.Bool("digests") {
				header = append(header, "DIGEST")
			}
			header = append(header, "IMAGE ID", "SIZE")
			if c.Bool("pinned") {
				header = append(header, "PINNED")
			}
			t := table(c.App.Writer)
			row(t, header...)
			for _, img := range list {
				id := img.Id
				if !c.Bool("no-trunc") {
					id = shortID(id)
				}
				digest := "<none>"
				if len(img.RepoDigests) > 0 {
					_, d, _ := strings.Cut(img.RepoDigests[0], "@")
					digest = shortID(d)
				}
				for _, rt := range repoTags(img) {
					cols := []string{rt[0], rt[1]}
					if c.Bool("digests") {
						cols = append(cols, digest)
					}
					cols = append(cols, id, units.HumanSizeWithPrecision(float64(img.Size), 3))
					if c.Bool("pinned") {
						cols = append(cols, fmt.Sprint(img.Pinned))
					}
					row(t, cols...)
				}
			}
			return t.Flush()
		},
	}
}

// repoTags splits an image's tags into repository and tag; an untagged
// image shows as its repository (from a digest) with tag <none>.
func repoTags(img *runtimeapi.Image) [][2]string {
	var out [][2]string
	for _, rt := range img.RepoTags {
		i := strings.LastIndex(rt, ":")
		if i < 0 || strings.Contains(rt[i:], "/") {
			out = append(out, [2]string{rt, "<none>"})
			continue
		}
		out = append(out, [2]string{rt[:i], rt[i+1:]})
	}
	if len(out) == 0 {
		repo := "<none>"
		if len(img.RepoDigests) > 0 {
			repo, _, _ = strings.Cut(img.RepoDigests[0], "@")
		}
		out = append(out, [2]string{repo, "<none>"})
	}
	return out
}

func firstName(img *runtimeapi.Image) string {
	rt := repoTags(img)[0]
	return rt[0] + ":" + rt[1]
}

func (cl *clients) inspectiCommand() *ucli.Command {
	return &ucli.Command{Name: "inspecti", Usage: "an image's status, as JSON", ArgsUsage: "IMAGE",
		Action: func(c *ucli.Context) error {
			ref, err := oneArg(c, "image")
			if err != nil {
				return err
			}
			ctx, cancel := cl.ctx(c)
			defer cancel()
			st, err := cl.images.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: ref}, true)
			if err != nil {
				return err
			}
			if st.Image == nil {
				return fmt.Errorf("no image %q; 'crictl images' lists them", ref)
			}
			return statusJSON(c.App.Writer, st.Image, st.Info)
		}}
}

func (cl *clients) pullCommand() *ucli.Command {
	return &ucli.Command{Name: "pull", Usage: "pull an image through the runtime (its registry configuration applies)", ArgsUsage: "IMAGE",
		Flags: []ucli.Flag{&ucli.StringFlag{Name: "creds", Usage: "registry credentials, USERNAME[:PASSWORD]"}},
		Action: func(c *ucli.Context) error {
			ref, err := oneArg(c, "image")
			if err != nil {
				return err
			}
			var auth *runtimeapi.AuthConfig
			if creds := c.String("creds"); creds != "" {
				user, pass, _ := strings.Cut(creds, ":")
				auth = &runtimeapi.AuthConfig{Username: user, Password: pass}
			}
			// A pull takes as long as it takes; Ctrl-C stops it.
			id, err := cl.images.PullImage(c.Context, &runtimeapi.ImageSpec{Image: ref}, auth, nil)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "Image is up to date for %s\n", id)
			return nil
		}}
}

func (cl *clients) rmiCommand() *ucli.Command {
	return &ucli.Command{Name: "rmi", Usage: "remove images", ArgsUsage: "IMAGE...",
		Flags: []ucli.Flag{&ucli.BoolFlag{Name: "prune", Usage: "remove every image that no container uses and that is not pinned"}},
		Action: func(c *ucli.Context) error {
			if c.Bool("prune") {
				return cl.prune(c)
			}
			return cl.each(c, "image", 0, cl.imageID, func(ctx context.Context, id string) error {
				return cl.images.RemoveImage(ctx, &runtimeapi.ImageSpec{Image: id})
			})
		}}
}

// imageID resolves a reference (normalized as the runtime names images) or
// an ID prefix to the image's ID.
func (cl *clients) imageID(ctx context.Context, arg string) (string, error) {
	list, err := cl.images.ListImages(ctx, nil)
	if err != nil {
		return "", err
	}
	name := arg
	if named, err := reference.ParseDockerRef(arg); err == nil {
		name = named.String()
	}
	var found []string
	for _, img := range list {
		if strings.HasPrefix(strings.TrimPrefix(img.Id, "sha256:"), strings.TrimPrefix(arg, "sha256:")) {
			found = append(found, img.Id)
			continue
		}
		for _, n := range append(img.RepoTags, img.RepoDigests...) {
			if n == name || n == arg {
				found = append(found, img.Id)
				break
			}
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("no image %q; 'crictl images' lists them", arg)
	default:
		return "", fmt.Errorf("%d images match %q; give more of the ID", len(found), arg)
	}
}

// prune removes every image that no container, running or not, uses,
// except pinned ones (system and air-gap images).
func (cl *clients) prune(c *ucli.Context) error {
	ctx, cancel := cl.ctx(c)
	defer cancel()
	ctrs, err := cl.runtime.ListContainers(ctx, nil)
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, ctr := range ctrs {
		used[ctr.ImageId] = true
		used[ctr.ImageRef] = true
	}
	list, err := cl.images.ListImages(ctx, nil)
	if err != nil {
		return err
	}
	for _, img := range list {
		if used[img.Id] || img.Pinned {
			continue
		}
		if err := cl.images.RemoveImage(ctx, &runtimeapi.ImageSpec{Image: img.Id}); err != nil {
			return fmt.Errorf("%s: %w", shortID(img.Id), err)
		}
		fmt.Fprintf(c.App.Writer, "Deleted: %s\n", firstName(img))
	}
	return nil
}
