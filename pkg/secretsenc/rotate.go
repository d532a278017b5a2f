package secretsenc

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// secretsPrefix is where the API server stores Secrets.
const secretsPrefix = "/registry/secrets/"

// Census counts the stored Secrets by the key that encrypted them; "" is
// plain text. It reads the datastore directly, as only the server can.
func Census(ctx context.Context, raw *clientv3.Client) (map[string]int, error) {
	resp, err := raw.Get(ctx, secretsPrefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("cannot read the datastore: %w", err)
	}
	counts := map[string]int{}
	for _, kv := range resp.Kvs {
		_, key := KeyOf(kv.Value)
		counts[key]++
	}
	return counts, nil
}

// Rotation replaces the encryption key of a running server's Secrets.
type Rotation struct {
	Path   string // the encryption configuration file
	API    kubernetes.Interface
	Raw    *clientv3.Client
	Log    func(format string, args ...any)
	Wait   time.Duration // how long the API server may take to load a change
	Polled time.Duration // how often to look
}

const probeName = "kubox-encryption-probe"

// RotateKeys puts a new key first and re-encrypts every Secret with it
// (Reencrypt): prepare, rotate and reencrypt in one.
func (r Rotation) RotateKeys(ctx context.Context) (Key, error) {
	c, err := Read(r.Path)
	if err != nil {
		return Key{}, notEnabled(err)
	}
	if c.Disabled {
		return Key{}, errors.New("secrets encryption is disabled: run kubox secrets-encrypt enable first")
	}
	next, k, err := Prepended(c, time.Now())
	if err != nil {
		return Key{}, err
	}
	if err := Write(r.Path, next); err != nil {
		return Key{}, err
	}
	r.Log("new key %s written", k.Name)
	_, err = r.Reencrypt(ctx)
	return k, err
}

// Reencrypt waits until the API server writes Secrets as the configuration
// now says (with its first key, or in plain text when disabled), writes
// every Secret again so that it is stored that way, and then retires the
// keys nothing is encrypted with. At every step each stored Secret can be
// read: a key is removed only once the census finds nothing encrypted with
// it. It returns the census.
func (r Rotation) Reencrypt(ctx context.Context) (map[string]int, error) {
	c, err := Read(r.Path)
	if err != nil {
		return nil, notEnabled(err)
	}
	provider, key, target := c.Provider, c.Keys[0].Name, c.Keys[0].Name
	if c.Disabled {
		provider, key, target = "", "", "plain text"
	}
	r.Log("waiting for the API server to write secrets with %s", target)
	if err := r.awaitKey(ctx, provider, key); err != nil {
		return nil, err
	}
	n, err := r.rewriteAll(ctx)
	if err != nil {
		return nil, err
	}
	r.Log("wrote %d secrets again, with %s", n, target)
	counts, err := Census(ctx, r.Raw)
	if err != nil {
		return counts, err
	}
	if others := total(counts) - counts[key]; others > 0 {
		return counts, fmt.Errorf("%d secrets are still not stored with %s; every key is kept: run reencrypt again", others, target)
	}
	// The first key stays (it encrypts, or will again once enabled), and
	// a prepared one waiting for rotate.
	keep, retired := c.Keys[:1], []Key{}
	for i, k := range c.Keys[1:] {
		if i+1 == c.prepared() {
			keep = append(keep, k)
		} else {
			retired = append(retired, k)
		}
	}
	if len(retired) > 0 {
		c.Keys = keep
		if err := Write(r.Path, c); err != nil {
			return counts, err
		}
		for _, k := range retired {
			r.Log("retired key %s", k.Name)
		}
	}
	return counts, nil
}

// total is the number of Secrets a census counted.
func total(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// awaitKey writes a probe Secret until the datastore shows it encrypted
// with key: the API server reloads its configuration on its own schedule.
func (r Rotation) awaitKey(ctx context.Context, provider, key string) error {
	secrets := r.API.CoreV1().Secrets(metav1.NamespaceSystem)
	defer secrets.Delete(context.WithoutCancel(ctx), probeName, metav1.DeleteOptions{}) //nolint:errcheck // best effort
	deadline := time.Now().Add(r.Wait)
	for i := 0; ; i++ {
		probe := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: probeName}, StringData: map[string]string{"n": fmt.Sprint(i)}}
		if _, err := secrets.Update(ctx, probe, metav1.UpdateOptions{}); apierrors.IsNotFound(err) {
			_, err = secrets.Create(ctx, probe, metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("cannot write a probe secret: %w", err)
			}
		} else if err != nil {
			return fmt.Errorf("cannot write a probe secret: %w", err)
		}
		resp, err := r.Raw.Get(ctx, secretsPrefix+metav1.NamespaceSystem+"/"+probeName)
		if err != nil {
			return fmt.Errorf("cannot read the datastore: %w", err)
		}
		if len(resp.Kvs) == 1 {
			if p, k := KeyOf(resp.Kvs[0].Value); p == provider && k == key {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the API server did not start writing secrets as %s says within %s; is the server running on this data dir?", r.Path, r.Wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.Polled):
		}
	}
}

// rewriteAll writes every Secret back unchanged, which stores it encrypted
// with the current key.
func (r Rotation) rewriteAll(ctx context.Context) (int, error) {
	list, err := r.API.CoreV1().Secrets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range list.Items {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := r.API.CoreV1().Secrets(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			_, err = r.API.CoreV1().Secrets(s.Namespace).Update(ctx, cur, metav1.UpdateOptions{})
			return err
		})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("cannot re-encrypt secret %s/%s: %w", s.Namespace, s.Name, err)
		}
		n++
	}
	return n, nil
}
