package server

import (
	"context"
	"encoding/json"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kubox-io/kubox/pkg/etcdmember"
	"github.com/kubox-io/kubox/pkg/kubeclient"
	"github.com/kubox-io/kubox/pkg/logging"
	"github.com/kubox-io/kubox/pkg/pki"
)

// Role labels, as kubectl's ROLES column reads them.
const (
	roleControlPlane = "node-role.kubernetes.io/control-plane"
	roleEtcd         = "node-role.kubernetes.io/etcd"
)

// nodeMarks are the labels and annotations the server puts on its own
// node: its roles, and the name of its etcd member, whose removal follows
// the node's deletion.
func (s *Server) nodeMarks() (labels, annotations map[string]string) {
	labels, annotations = map[string]string{roleControlPlane: "true"}, map[string]string{}
	if e := s.cfg.Datastore.Etcd; e != nil {
		labels[roleEtcd] = "true"
		annotations[etcdmember.Annotation] = e.Name
	}
	return labels, annotations
}

// markNode keeps the marks on the server's node: set once the kubelet has
// registered it, and again if it registers anew. The kubelet cannot set
// node-role labels itself.
func (s *Server) markNode(ctx context.Context, log *logging.Logger) error {
	client, err := kubeclient.New(s.cfg.Paths.AdminKubeconfig)
	if err != nil {
		return err
	}
	labels, annotations := s.nodeMarks()
	for {
		found, marked, err := markNode(ctx, client, s.cfg.NodeName, labels, annotations)
		wait := 30 * time.Second
		if err != nil && ctx.Err() == nil {
			log.Warnf("cannot mark node %s with its roles yet: %v", s.cfg.NodeName, err)
		}
		if marked {
			log.Infof("node %s is marked with its roles", s.cfg.NodeName)
		}
		if !found {
			wait = 2 * time.Second // the kubelet registers it soon
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// markNode patches what the node lacks of labels and annotations. It says
// whether the node exists and whether it changed it.
func markNode(ctx context.Context, client kubernetes.Interface, name string, labels, annotations map[string]string) (found, marked bool, err error) {
	node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	missing := func(have, want map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range want {
			if have[k] != v {
				out[k] = v
			}
		}
		return out
	}
	l, a := missing(node.Labels, labels), missing(node.Annotations, annotations)
	if len(l) == 0 && len(a) == 0 {
		return true, false, nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": l, "annotations": a}})
	if err != nil {
		return true, false, err
	}
	_, err = client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	return true, err == nil, err
}

// etcdMembers removes the etcd member of a server node that is deleted.
func (s *Server) etcdMembers(ctx context.Context, log *logging.Logger) error {
	e := s.cfg.Datastore.Etcd
	client, err := kubeclient.New(s.cfg.Paths.AdminKubeconfig)
	if err != nil {
		return err
	}
	cli, err := etcdmember.Client(pki.EtcdFiles(e.TLSDir), []string{e.ClientURL()}, 10*time.Second)
	if err != nil {
		return err
	}
	defer cli.Close()
	return (&etcdmember.Controller{Kube: client, Etcd: cli, Log: log}).Run(ctx)
}
