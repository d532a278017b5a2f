package join

import (
	"context"
	"fmt"
	"net/http"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A node password record is the Secret kube-system/<node>.node-password.kubox
// holding a bcrypt hash of the password of the machine that owns the name.
const (
	passwordSuffix = ".node-password.kubox"
	passwordLabel  = "kubox.io/node-password"
	passwordKey    = "hash"
	// bcrypt reads no further than 72 bytes; a longer password would share
	// its hash with every other password of the same first 72 bytes.
	maxPasswordLen = 72
)

// claimNodeName lets the machine with password use the node name: the first
// one to join with a name owns it, and later joins must bring the same
// password. The Secret decides, not the Node: see the package comment.
func (s *Server) claimNodeName(ctx context.Context, name, password string) error {
	secrets := s.cfg.Client.CoreV1().Secrets(metav1.NamespaceSystem)
	recName := name + passwordSuffix
	rec, err := secrets.Get(ctx, recName, metav1.GetOptions{})
	if err == nil {
		return checkPassword(rec, name, password)
	}
	if !apierrors.IsNotFound(err) {
		return internal("reading the password record of node %s: %v", name, err)
	}

	// A Node with no record was not registered through a join, such as the
	// server's own node; its name is not free for the taking.
	_, err = s.cfg.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return &httpError{http.StatusForbidden, fmt.Sprintf(
			"node name %s is taken by an existing node: pick another --node-name, or delete the node %s if its machine is gone", name, name)}
	}
	if !apierrors.IsNotFound(err) {
		return internal("reading node %s: %v", name, err)
	}

	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return internal("hashing the password of node %s: %v", name, err)
	}
	rec = &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: recName, Namespace: metav1.NamespaceSystem, Labels: map[string]string{passwordLabel: "true"}},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{passwordKey: hash},
	}
	_, err = secrets.Create(ctx, rec, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Another join with this name got there first: its password counts.
		if rec, err = secrets.Get(ctx, recName, metav1.GetOptions{}); err != nil {
			return internal("reading the password record of node %s: %v", name, err)
		}
		return checkPassword(rec, name, password)
	}
	if err != nil {
		return internal("storing the password record of node %s: %v", name, err)
	}
	return nil
}

func checkPassword(rec *corev1.Secret, name, password string) error {
	if bcrypt.CompareHashAndPassword(rec.Data[passwordKey], []byte(password)) == nil {
		return nil
	}
	return &httpError{http.StatusForbidden, fmt.Sprintf(
		"node name %s is already registered by another machine: pick another --node-name, or delete the node and the secret kube-system/%s%s",
		name, name, passwordSuffix)}
}

// checkNodePassword requires the name's record and its password: a node
// renewing its certificates is still the machine that joined.
func (s *Server) checkNodePassword(ctx context.Context, name, password string) error {
	rec, err := s.cfg.Client.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, name+passwordSuffix, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &httpError{http.StatusForbidden, fmt.Sprintf(
			"node %s has no password record on this server (kube-system/%s%s was deleted): join again with a token", name, name, passwordSuffix)}
	}
	if err != nil {
		return internal("reading the password record of node %s: %v", name, err)
	}
	return checkPassword(rec, name, password)
}
