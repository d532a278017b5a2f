package join

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
)

func TestBootstrapTokens(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()

	forever, err := CreateBootstrapToken(ctx, client, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	// The Kubernetes pattern, so the API server's own authenticator reads them too.
	if !regexp.MustCompile(bootstrapapi.BootstrapTokenPattern).MatchString(forever) {
		t.Fatalf("token %q does not match %s", forever, bootstrapapi.BootstrapTokenPattern)
	}
	before := time.Now()
	day, err := CreateBootstrapToken(ctx, client, 24*time.Hour, "rack 4")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateBootstrapToken(ctx, client, -time.Second, ""); err == nil || !strings.Contains(err.Error(), "0 for a token that never expires") {
		t.Errorf("negative ttl: err = %v", err)
	}

	sec, err := client.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-"+forever[:6], metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Type != bootstrapapi.SecretTypeBootstrapToken || string(sec.Data["token-secret"]) != forever[7:] ||
		string(sec.Data["usage-bootstrap-authentication"]) != "true" || sec.Data["expiration"] != nil {
		t.Errorf("secret of a token without expiry = type %s, data %q", sec.Type, sec.Data)
	}

	tokens, err := ListBootstrapTokens(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 2 {
		t.Fatalf("listed %d tokens, want 2: %+v", len(tokens), tokens)
	}
	byID := map[string]BootstrapToken{}
	for _, tok := range tokens {
		byID[tok.ID] = tok
	}
	if tok := byID[forever[:6]]; !tok.Expires.IsZero() || tok.Description != "" {
		t.Errorf("token without expiry listed as %+v", tok)
	}
	tok := byID[day[:6]]
	if tok.Description != "rack 4" || tok.Expires.Before(before.Add(24*time.Hour-time.Second)) || tok.Expires.After(time.Now().Add(24*time.Hour)) {
		t.Errorf("day token listed as %+v", tok)
	}
	if tokens[0].ID > tokens[1].ID {
		t.Errorf("tokens not sorted: %+v", tokens)
	}

	if err := DeleteBootstrapToken(ctx, client, day[:6]); err != nil {
		t.Fatal(err)
	}
	if err := DeleteBootstrapToken(ctx, client, day[:6]); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("deleting twice: err = %v", err)
	}
	if err := DeleteBootstrapToken(ctx, client, day); err == nil || !strings.Contains(err.Error(), "6 characters before the '.'") {
		t.Errorf("deleting by full token: err = %v", err)
	}
	if tokens, _ := ListBootstrapTokens(ctx, client); len(tokens) != 1 || tokens[0].ID != forever[:6] {
		t.Errorf("after delete: %+v", tokens)
	}
}

func TestRandomStringAlphabet(t *testing.T) {
	seen := map[rune]bool{}
	for range 200 {
		s, err := randomString(tokenSecretLen)
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != tokenSecretLen {
			t.Fatalf("length %d", len(s))
		}
		for _, r := range s {
			if !strings.ContainsRune(tokenAlphabet, r) {
				t.Fatalf("%q is outside the alphabet", r)
			}
			seen[r] = true
		}
	}
	if len(seen) != len(tokenAlphabet) {
		t.Errorf("only %d of %d characters drawn in 3200 draws", len(seen), len(tokenAlphabet))
	}
}
