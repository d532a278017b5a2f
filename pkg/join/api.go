package join

// The routes Server.Wrap serves in front of the API server's handlers, so
// Kubernetes authentication never sees them.
const (
	pathPrefix  = "/v1-kubox/"
	cacertsPath = pathPrefix + "cacerts" // GET, no authentication: the CA bundle PEM
	nodePath    = pathPrefix + "node"    // POST, bearer token: a NodeRequest for a NodeBundle
)

// NodeRequest is what an agent sends to join.
type NodeRequest struct {
	NodeName string `json:"nodeName"`
	// NodePassword is the machine's own random secret: the first machine to
	// join with a node name owns it, and only its password gets that name's
	// certificates again.
	NodePassword string `json:"nodePassword"`
	// Addresses are the node's IPs, for the kubelet's serving certificate.
	Addresses []string `json:"addresses"`
	// Hostname, if a valid DNS name, is added to the serving certificate.
	Hostname string `json:"hostname,omitempty"`
}

// KeyPair is a PEM certificate and its PEM private key.
type KeyPair struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// NodeBundle is everything a joining node gets from the server.
type NodeBundle struct {
	CABundle  string        `json:"caBundle"`  // verifies the API server
	ClientCA  string        `json:"clientCA"`  // the kubelet accepts clients it signed
	Kubelet   KeyPair       `json:"kubelet"`   // system:node:<name>, O=system:nodes
	Serving   KeyPair       `json:"serving"`   // the kubelet's serving certificate
	KubeProxy KeyPair       `json:"kubeProxy"` // system:kube-proxy
	Flannel   KeyPair       `json:"flannel"`   // flannel and local storage: system:kubox-flannel
	Cluster   ClusterConfig `json:"cluster"`

	// TrustedOnFirstUse is set by Join when the token held no CA hash, so the
	// CA was taken on trust; the caller should warn and show the full token.
	TrustedOnFirstUse bool `json:"-"`
}

// ClusterConfig holds the cluster-wide values a node must share with its
// server.
type ClusterConfig struct {
	ClusterCIDR    string   `json:"clusterCIDR"`
	ServiceCIDR    string   `json:"serviceCIDR"`
	ClusterDNS     string   `json:"clusterDNS"`
	ClusterDomain  string   `json:"clusterDomain"`
	FlannelBackend string   `json:"flannelBackend"`
	ServerURLs     []string `json:"serverURLs"`
	// Disabled are the add-ons the server runs without (--disable); the
	// node-side ones (servicelb) stay off on agents too.
	Disabled []string `json:"disabled,omitempty"`
}
