// Package join lets an agent join a server with a token: the token format
// (which pins the server's CA), the server's /v1-kubox/ routes that hand a
// node its certificates and the cluster's settings, bootstrap tokens, and the
// agent's client that fetches and writes them.
package join
