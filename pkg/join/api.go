package join

import "github.com/kubox-io/kubox/pkg/config"

// The routes Server.Wrap serves in front of the API server's handlers, so
// Kubernetes authentication never sees them.
const (
	pathPrefix  = "/v1-kubox/"
	cacertsPath = pathPrefix + "cacerts" // GET, no authentication: the CA bundle PEM
	nodePath    = pathPrefix + "node"    // POST, bearer token: a NodeRequest for a NodeBundle
	renewPath   = pathPrefix + "renew"   // POST, the node's client certificate: the same, with no token
)

// NodeRequest is what an agent sends to join.
type NodeRequest struct {
	NodeName string `json:"nodeName"`
	// NodePassword is the machine's own random secret: the first machine to
	// join with a node name owns it, and only its password gets that name's
	// certificates again.
	NodePassword string `json:"nodePassword"`
	// Addresses are the node's IPs, for the kubelet's serving certificate;
	// the server refuses its own and other nodes' addresses.
	Addresses []string `json:"addresses"`
}

// KeyPair is a PEM certificate and its PEM private key.
type KeyPair struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// NodeBundle is everything a joining node gets from the server.
type NodeBundle struct {
	CABundle string        `json:"caBundle"` // verifies the API server
	ClientCA string        `json:"clientCA"` // the kubelet accepts clients it signed
	Node     KeyPair       `json:"node"`     // system:node:<name>, O=system:nodes: every node component's identity
	Serving  KeyPair       `json:"serving"`  // the kubelet's serving certificate, from the kubelet CA
	Cluster  ClusterConfig `json:"cluster"`

	// TrustedOnFirstUse is set by Join when the token held no CA hash, so the
	// CA was taken on trust; the caller should warn and show the full token.
	TrustedOnFirstUse bool `json:"-"`
}

// ClusterConfig holds the cluster-wide values a node must share with its
// server; config owns their derivation.
type ClusterConfig = config.Cluster
