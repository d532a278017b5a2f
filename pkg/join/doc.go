// Package join lets an agent join a server with a token: the token format
// (which pins the server's CA), the server's /v1-kubox/ routes that hand a
// node its certificates and the cluster's settings, bootstrap tokens, and the
// agent's client that fetches and writes them.
//
// A node name belongs to the first machine that joins with it: the server
// keeps a hash of that machine's node password in the Secret
// kube-system/<name>.node-password.kubox and refuses the name to any other
// password. The Secret, not the Node, is what counts: deleting the Node
// (kubectl delete node) does not free the name, and the machine that owns it
// may join again later; deleting the Secret frees it. A name that has a Node
// but no Secret, such as the server's own node, is not handed out either
// until that Node is deleted.
package join
