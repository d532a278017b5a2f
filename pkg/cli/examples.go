package cli

import (
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// example is one command line shown in a command's --help, with what it
// does. A test checks that each names real commands and flags.
type example struct{ what, line string }

// commandExamples are the examples of each command, by its path below kubox.
func commandExamples() map[string][]example {
	return map[string][]example{
		"server": {
			{"a one-node cluster: the control plane and a node in one process", "kubox server"},
			{"the first server of a cluster, keeping its state in an embedded etcd", "kubox server --cluster-init --tls-san k8s.example.com"},
			{"the control plane only, logging JSON lines for a log collector", "kubox server --disable-agent --log-format json"},
		},
		"agent": {
			{"join a server with the token from its <data-dir>/server/token", "kubox agent --server https://10.0.0.1:6443 --token-file /root/kubox-token"},
		},
		"kubectl": {{"the embedded kubectl, with the admin kubeconfig kubox wrote", "kubox kubectl get nodes -o wide"}},
		"ctr":     {{"the images in kubox's containerd", "kubox ctr images ls"}},
		"crictl": {
			{"the containers running on this node", "kubox crictl ps"},
			{"the node's images, with those the kubelet's image GC never removes", "kubox crictl images --pinned"},
		},
		"check-config": {
			{"what this host lacks, with the fixes", "kubox check-config"},
			{"as JSON, failing if wireguard is missing too", "kubox check-config -o json --require wireguard"},
			{"before joining a server: its clock too, and etcd's ports free", "kubox check-config --server https://10.0.0.1:6443 --require port-2379 --require port-2380"},
		},
		"killall": {{"take down the node whose state is in /srv/kubox", "kubox killall --data-dir /srv/kubox"}},
		"completion": {
			{"complete kubox's commands and flags in this bash", "source <(kubox completion bash)"},
			{"for every zsh session", "kubox completion zsh > \"${fpath[1]}/_kubox\""},
		},
		"token":            {{"a token for one more node", "kubox token create --ttl 2h --description rack-3"}},
		"token create":     {{"a token that works for two hours", "kubox token create --ttl 2h --description rack-3"}},
		"token list":       {{"the tokens and when they expire", "kubox token list"}},
		"token delete":     {{"delete the token whose ID is abcdef", "kubox token delete abcdef"}},
		"etcd":             {{"the members of the servers' etcd", "kubox etcd member list"}},
		"etcd member":      {{"the members of the servers' etcd", "kubox etcd member list"}},
		"etcd member list": {{"for a server with another data dir", "kubox etcd member list --data-dir /srv/kubox"}},
		"snapshot":         {{"a snapshot now", "kubox snapshot save --name before-upgrade"}, {"the snapshots there are", "kubox snapshot ls"}},
		"snapshot save": {
			{"a snapshot named before-upgrade-<node>-<time>", "kubox snapshot save --name before-upgrade"},
			{"one kept in S3 too", "kubox snapshot save --snapshot-s3 --snapshot-s3-bucket backups"},
		},
		"snapshot ls":      {{"as JSON", "kubox snapshot ls -o json"}},
		"snapshot delete":  {{"delete one snapshot", "kubox snapshot delete on-demand-node1-1767225600"}},
		"snapshot prune":   {{"keep the three newest on-demand snapshots", "kubox snapshot prune --snapshot-retention 3"}},
		"snapshot restore": {{"with the server stopped", "kubox snapshot restore /var/lib/kubox/server/db/snapshots/on-demand-node1-1767225600"}},
		"certificate":      {{"every certificate and its days left", "kubox certificate check"}},
		"certificate check": {
			{"every certificate and its days left", "kubox certificate check"},
			{"as JSON", "kubox certificate check -o json"},
		},
		"certificate rotate": {
			{"renew every certificate now", "kubox certificate rotate"},
			{"renew only the API server's", "kubox certificate rotate --service serving-kube-apiserver"},
		},
		"certificate rotate-ca": {{"switch to the CAs in /root/new-ca, then restart the server", "kubox certificate rotate-ca --path /root/new-ca"}},
		"secrets-encrypt":       {{"how Secrets are stored", "kubox secrets-encrypt status"}},
		"secrets-encrypt status": {
			{"the provider, the keys and the stored Secrets", "kubox secrets-encrypt status"},
		},
		"secrets-encrypt enable":      {{"encrypt with secretbox", "kubox secrets-encrypt enable --secrets-encryption-provider secretbox"}},
		"secrets-encrypt disable":     {{"store new Secrets in plain text", "kubox secrets-encrypt disable"}},
		"secrets-encrypt prepare":     {{"step 1 of 3 of a key rotation", "kubox secrets-encrypt prepare"}},
		"secrets-encrypt rotate":      {{"step 2 of 3 of a key rotation", "kubox secrets-encrypt rotate"}},
		"secrets-encrypt reencrypt":   {{"step 3 of 3 of a key rotation", "kubox secrets-encrypt reencrypt --timeout 5m"}},
		"secrets-encrypt rotate-keys": {{"the three steps in one", "kubox secrets-encrypt rotate-keys"}},
	}
}

// addExamples puts each command's examples in its Description, which
// urfave/cli shows in --help.
func addExamples(cmds []*ucli.Command, parent string, all map[string][]example) {
	for _, c := range cmds {
		path := strings.TrimSpace(parent + " " + c.Name)
		if ex := all[path]; len(ex) > 0 {
			c.Description = renderExamples(ex)
		}
		addExamples(c.Subcommands, path, all)
	}
}

func renderExamples(ex []example) string {
	var b strings.Builder
	b.WriteString("Examples:")
	for _, e := range ex {
		b.WriteString("\n  # " + e.what + "\n  " + e.line)
	}
	return b.String()
}
