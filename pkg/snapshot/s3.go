package snapshot

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/kubox-io/kubox/pkg/config"
)

// remote is an S3 bucket (Amazon's or any S3-compatible server) holding a
// copy of each snapshot and its metadata.
type remote struct {
	cl  *minio.Client
	cfg config.S3
}

func newRemote(cfg *config.S3) (*remote, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: cfg.SkipVerify} //nolint:gosec // the user's explicit choice
	if cfg.EndpointCA != "" {
		pem, err := os.ReadFile(cfg.EndpointCA)
		if err != nil {
			return nil, fmt.Errorf("cannot read --snapshot-s3-endpoint-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--snapshot-s3-endpoint-ca %s holds no PEM certificate", cfg.EndpointCA)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	} else {
		creds = credentials.NewIAM("") // the instance's role, as on EC2
	}
	cl, err := minio.New(cfg.Endpoint, &minio.Options{Creds: creds, Secure: !cfg.Insecure, Region: cfg.Region, Transport: tr})
	if err != nil {
		return nil, fmt.Errorf("S3 endpoint %s: %w; check --snapshot-s3-endpoint", cfg.Endpoint, err)
	}
	return &remote{cl: cl, cfg: *cfg}, nil
}

func (r *remote) key(name string) string { return path.Join(r.cfg.Folder, name) }

func (r *remote) where() string { return "s3://" + path.Join(r.cfg.Bucket, r.cfg.Folder) }

// errorf wraps an S3 failure with where it happened and what to check.
func (r *remote) errorf(what string, err error) error {
	return fmt.Errorf("S3 %s at %s (%s): %v; check the --snapshot-s3-* settings and that the bucket exists", what, r.where(), r.cfg.Endpoint, err)
}

func (r *remote) upload(ctx context.Context, m Meta) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	for _, f := range []string{m.Path, m.Path + metaSuffix} {
		if _, err := r.cl.FPutObject(ctx, r.cfg.Bucket, r.key(filepath.Base(f)), f, minio.PutObjectOptions{ContentType: "application/octet-stream"}); err != nil {
			return r.errorf("upload of "+filepath.Base(f), err)
		}
	}
	return nil
}

// list returns the bucket's snapshots, with their metadata objects read.
func (r *remote) list(ctx context.Context) ([]Meta, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	prefix := ""
	if r.cfg.Folder != "" {
		prefix = r.cfg.Folder + "/"
	}
	var out []Meta
	for obj := range r.cl.ListObjects(ctx, r.cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix}) {
		if obj.Err != nil {
			return nil, r.errorf("listing", obj.Err)
		}
		name := strings.TrimPrefix(obj.Key, prefix)
		if name == "" || strings.Contains(name, "/") || strings.HasSuffix(name, metaSuffix) {
			continue
		}
		m := Meta{Name: name, Size: obj.Size, Created: obj.LastModified.UTC()}
		if ts, ok := nameTime(name); ok {
			m.Created = ts
		}
		if o, err := r.cl.GetObject(ctx, r.cfg.Bucket, obj.Key+metaSuffix, minio.GetObjectOptions{}); err == nil {
			if data, err := io.ReadAll(io.LimitReader(o, 64<<10)); err == nil {
				var full Meta
				if json.Unmarshal(data, &full) == nil && full.Name == name {
					m = full
				}
			}
			o.Close()
		}
		m.Location = r.where() + "/" + name
		out = append(out, m)
	}
	return out, nil
}

// delete removes a snapshot and its metadata; false when it was not there.
func (r *remote) delete(ctx context.Context, name string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	if _, err := r.cl.StatObject(ctx, r.cfg.Bucket, r.key(name), minio.StatObjectOptions{}); err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return false, nil
		}
		return false, r.errorf("lookup of "+name, err)
	}
	for _, k := range []string{r.key(name), r.key(name) + metaSuffix} {
		if err := r.cl.RemoveObject(ctx, r.cfg.Bucket, k, minio.RemoveObjectOptions{}); err != nil {
			return true, r.errorf("delete of "+name, err)
		}
	}
	return true, nil
}

// download fetches a snapshot and its metadata into dir.
func (r *remote) download(ctx context.Context, name, dir string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	dst := filepath.Join(dir, name)
	if err := r.cl.FGetObject(ctx, r.cfg.Bucket, r.key(name), dst, minio.GetObjectOptions{}); err != nil {
		return "", r.errorf("download of "+name, err)
	}
	// Without its metadata the restore still checks the content.
	_ = r.cl.FGetObject(ctx, r.cfg.Bucket, r.key(name)+metaSuffix, dst+metaSuffix, minio.GetObjectOptions{})
	return dst, nil
}
