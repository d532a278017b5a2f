// Package ocipush uploads the images of an OCI layout archive (what the
// tests' image builds write) to a registry through the distribution HTTP
// API, so that a test can fill a registry of its own with no other tool.
package ocipush

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// Archive is an OCI layout archive read into memory.
type Archive struct {
	blobs map[string][]byte
	// Images are the manifests its index.json lists, in its order.
	Images []Image
}

// Image is one manifest of an archive.
type Image struct {
	// Name is the image's full name (containerd's annotation), "" if none.
	Name      string
	Digest    string
	MediaType string
}

// Read loads the archive at path.
func Read(path string) (*Archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a := &Archive{blobs: map[string][]byte{}}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, h.Name, err)
		}
		a.blobs[strings.TrimPrefix(h.Name, "./")] = b
	}
	var index struct {
		Manifests []struct {
			Digest, MediaType string
			Annotations       map[string]string
		}
	}
	if err := json.Unmarshal(a.blobs["index.json"], &index); err != nil {
		return nil, fmt.Errorf("index.json of %s: %w", path, err)
	}
	for _, m := range index.Manifests {
		a.Images = append(a.Images, Image{Name: m.Annotations["io.containerd.image.name"], Digest: m.Digest, MediaType: m.MediaType})
	}
	return a, nil
}

func (a *Archive) blob(digest string) ([]byte, error) {
	b, ok := a.blobs["blobs/"+strings.Replace(digest, ":", "/", 1)]
	if !ok {
		return nil, fmt.Errorf("blob %s is not in the archive", digest)
	}
	return b, nil
}

// Registry is where images go.
type Registry struct {
	Base      string // scheme and host, e.g. https://127.0.0.1:5000
	Client    *http.Client
	Authorize func(*http.Request) // nil for none

	// has maps a blob's digest to a repository it was pushed to, from
	// which another repository mounts it instead of uploading it again.
	has map[string]string
}

// Push uploads img as repo:tag: each blob the registry lacks in one
// monolithic upload, then the manifest.
func (r *Registry) Push(a *Archive, img Image, repo, tag string) error {
	manifest, err := a.blob(img.Digest)
	if err != nil {
		return err
	}
	var m struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return fmt.Errorf("manifest %s: %w", img.Digest, err)
	}
	base := r.Base + "/v2/" + repo
	digests := []string{m.Config.Digest}
	for _, l := range m.Layers {
		digests = append(digests, l.Digest)
	}
	if r.has == nil {
		r.has = map[string]string{}
	}
	for _, d := range digests {
		// Images share layers: each is sent once, and mounted into the
		// other repositories that need it.
		if from, ok := r.has[d]; ok {
			if from == repo {
				continue
			}
			q := url.Values{"mount": {d}, "from": {from}}
			if _, err := r.do(http.MethodPost, base+"/blobs/uploads/?"+q.Encode(), "", nil, http.StatusCreated); err == nil {
				continue
			}
		}
		b, err := a.blob(d)
		if err != nil {
			return err
		}
		resp, err := r.do(http.MethodPost, base+"/blobs/uploads/", "", nil, http.StatusAccepted)
		if err != nil {
			return err
		}
		loc, err := resp.Location()
		if err != nil {
			return err
		}
		q := loc.Query()
		q.Set("digest", d)
		loc.RawQuery = q.Encode()
		if _, err := r.do(http.MethodPut, loc.String(), "application/octet-stream", b, http.StatusCreated); err != nil {
			return err
		}
		r.has[d] = repo
	}
	_, err = r.do(http.MethodPut, base+"/manifests/"+url.PathEscape(tag), img.MediaType, manifest, http.StatusCreated)
	return err
}

func (r *Registry) do(method, u, contentType string, body []byte, want int) (*http.Response, error) {
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if r.Authorize != nil {
		r.Authorize(req)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := r.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %s %s", method, u, resp.Status, bytes.TrimSpace(msg))
	}
	return resp, nil
}
