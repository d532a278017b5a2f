package join

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
)

// Bootstrap tokens are the Kubernetes kind (kubeadm's), so the same Secrets
// serve the API server's bootstrap authenticator should it be turned on.
const (
	tokenNamespace = metav1.NamespaceSystem
	tokenAlphabet  = "abcdefghijklmnopqrstuvwxyz0123456789"
	tokenIDLen     = 6
	tokenSecretLen = 16
)

// BootstrapToken describes a stored bootstrap token, without its secret.
type BootstrapToken struct {
	ID          string
	Expires     time.Time // zero: never
	Description string
}

// CreateBootstrapToken stores a new random bootstrap token valid for ttl (0:
// no expiry) and returns it as <id>.<secret>.
func CreateBootstrapToken(ctx context.Context, client kubernetes.Interface, ttl time.Duration, description string) (string, error) {
	if ttl < 0 {
		return "", fmt.Errorf("invalid token lifetime %s: give a positive duration, or 0 for a token that never expires", ttl)
	}
	// A clash of random ids is unlikely but harmless: draw again.
	for range 3 {
		id, err := randomString(tokenIDLen)
		if err != nil {
			return "", err
		}
		secret, err := randomString(tokenSecretLen)
		if err != nil {
			return "", err
		}
		data := map[string][]byte{
			bootstrapapi.BootstrapTokenIDKey:               []byte(id),
			bootstrapapi.BootstrapTokenSecretKey:           []byte(secret),
			bootstrapapi.BootstrapTokenUsageAuthentication: []byte("true"),
		}
		if ttl > 0 {
			data[bootstrapapi.BootstrapTokenExpirationKey] = []byte(time.Now().Add(ttl).UTC().Format(time.RFC3339))
		}
		if description != "" {
			data[bootstrapapi.BootstrapTokenDescriptionKey] = []byte(description)
		}
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: bootstrapapi.BootstrapTokenSecretPrefix + id, Namespace: tokenNamespace},
			Type:       bootstrapapi.SecretTypeBootstrapToken,
			Data:       data,
		}
		_, err = client.CoreV1().Secrets(tokenNamespace).Create(ctx, s, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("storing bootstrap token %s: %w", id, err)
		}
		return id + "." + secret, nil
	}
	return "", errors.New("storing bootstrap token: every random id drawn was taken")
}

// ListBootstrapTokens returns every bootstrap token in kube-system, expired
// ones included, sorted by id.
func ListBootstrapTokens(ctx context.Context, client kubernetes.Interface) ([]BootstrapToken, error) {
	list, err := client.CoreV1().Secrets(tokenNamespace).List(ctx, metav1.ListOptions{
		FieldSelector: "type=" + string(bootstrapapi.SecretTypeBootstrapToken),
	})
	if err != nil {
		return nil, fmt.Errorf("listing bootstrap tokens: %w", err)
	}
	var tokens []BootstrapToken
	for _, s := range list.Items {
		// Filter here too: not every client applies the field selector.
		if s.Type != bootstrapapi.SecretTypeBootstrapToken {
			continue
		}
		t := BootstrapToken{
			ID:          string(s.Data[bootstrapapi.BootstrapTokenIDKey]),
			Description: string(s.Data[bootstrapapi.BootstrapTokenDescriptionKey]),
		}
		if exp := s.Data[bootstrapapi.BootstrapTokenExpirationKey]; len(exp) > 0 {
			// An unreadable expiration makes the token invalid; listing it as
			// already expired says so.
			if t.Expires, err = time.Parse(time.RFC3339, string(exp)); err != nil {
				t.Expires = time.Unix(0, 0).UTC()
			}
		}
		tokens = append(tokens, t)
	}
	slices.SortFunc(tokens, func(a, b BootstrapToken) int { return strings.Compare(a.ID, b.ID) })
	return tokens, nil
}

// DeleteBootstrapToken deletes the bootstrap token with id; nodes that joined
// with it keep their certificates.
func DeleteBootstrapToken(ctx context.Context, client kubernetes.Interface, id string) error {
	if !bootstrapIDRE.MatchString(id) {
		return fmt.Errorf("invalid bootstrap token id %q: give the 6 characters before the '.'", id)
	}
	err := client.CoreV1().Secrets(tokenNamespace).Delete(ctx, bootstrapapi.BootstrapTokenSecretPrefix+id, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("bootstrap token %s does not exist: list the tokens to see which do", id)
	}
	if err != nil {
		return fmt.Errorf("deleting bootstrap token %s: %w", id, err)
	}
	return nil
}

// randomString draws n characters of tokenAlphabet uniformly.
func randomString(n int) (string, error) {
	max := big.NewInt(int64(len(tokenAlphabet)))
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("generating bootstrap token: %w", err)
		}
		b[i] = tokenAlphabet[k.Int64()]
	}
	return string(b), nil
}
