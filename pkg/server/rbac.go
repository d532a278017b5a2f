package server

import (
	"context"
	"fmt"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubox-io/kubox/pkg/kubeclient"
	"github.com/kubox-io/kubox/pkg/pki"
)

// Every node acts as system:node:<name> (group system:nodes): the kubelet,
// kube-proxy, flannel and kubox's node controllers (local-path storage,
// servicelb, network policy). The Node authorizer and NodeRestriction keep a node's writes
// to its own Node; what they leave to RBAC is granted to the group below,
// and the admission policy limits volume writes to the node's own volumes.
const (
	// NodeRole holds what every node's own controllers need beyond the
	// Node authorizer: flannel lists all Nodes to route to their pod
	// ranges, local-path storage watches claims and classes and writes its
	// node's volumes, servicelb writes LoadBalancer Services' ingress,
	// network policy watches every pod, namespace and policy.
	NodeRole = "kubox:node"
	// nodeVolumesPolicy confines a node's volume writes to volumes bound to it.
	nodeVolumesPolicy = "kubox-node-volumes"
	// legacyNodeUser was one identity shared by every node's flannel and
	// controllers; its role is removed so that certificates issued for it
	// before grant nothing.
	legacyNodeUser = "system:kubox-flannel"
)

// ensureRBAC creates the cluster roles and the admission policy kubox's
// own node components need. The API server enforces the policy up to a
// second later: waitNodeVolumesEnforced tells when.
func ensureRBAC(ctx context.Context, kubeconfig string) error {
	c, err := kubeclient.New(kubeconfig)
	if err != nil {
		return err
	}
	labels := map[string]string{"kubox.io/managed": "true"}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: NodeRole, Labels: labels},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
			// local-path storage
			{APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"storage.k8s.io"}, Resources: []string{"storageclasses"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"persistentvolumes"}, Verbs: []string{"get", "list", "watch", "create", "delete"}},
			// servicelb
			{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"services/status"}, Verbs: []string{"update"}},
			// network policy: every pod's labels and address, namespaces'
			// labels and the policies themselves
			{APIGroups: []string{""}, Resources: []string{"pods", "namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"list", "watch"}},
		},
	}
	if err := applyClusterRole(ctx, c, role); err != nil {
		return err
	}
	bindings := []*rbacv1.ClusterRoleBinding{
		{
			ObjectMeta: metav1.ObjectMeta{Name: NodeRole, Labels: labels},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: NodeRole},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "Group", Name: pki.NodesGroup}},
		},
		// kube-proxy runs as the node: the upstream role kube-proxy's own
		// user has (read Services, EndpointSlices, Nodes; write Events).
		{
			ObjectMeta: metav1.ObjectMeta{Name: "kubox:node-proxier", Labels: labels},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:node-proxier"},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "Group", Name: pki.NodesGroup}},
		},
	}
	for _, b := range bindings {
		if _, err := c.RbacV1().ClusterRoleBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating cluster role binding %s: %w", b.Name, err)
		}
	}
	if err := applyNodeVolumesPolicy(ctx, c, labels); err != nil {
		return err
	}
	for _, del := range []func() error{
		func() error {
			return c.RbacV1().ClusterRoleBindings().Delete(ctx, legacyNodeUser, metav1.DeleteOptions{})
		},
		func() error { return c.RbacV1().ClusterRoles().Delete(ctx, legacyNodeUser, metav1.DeleteOptions{}) },
	} {
		if err := del(); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("removing the role of %s: %w", legacyNodeUser, err)
		}
	}
	return nil
}

func applyClusterRole(ctx context.Context, c kubernetes.Interface, role *rbacv1.ClusterRole) error {
	if _, err := c.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		if _, err = c.RbacV1().ClusterRoles().Update(ctx, role, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("updating cluster role %s: %w", role.Name, err)
		}
	} else if err != nil {
		return fmt.Errorf("creating cluster role %s: %w", role.Name, err)
	}
	return nil
}

// nodeVolumesExpr holds when the volume a node creates or deletes is
// pinned, by its node affinity, to that node alone (local-path volumes are).
const nodeVolumesExpr = `variables.pv != null &&
has(variables.pv.spec.nodeAffinity) && has(variables.pv.spec.nodeAffinity.required) &&
size(variables.pv.spec.nodeAffinity.required.nodeSelectorTerms) > 0 &&
variables.pv.spec.nodeAffinity.required.nodeSelectorTerms.all(t,
  has(t.matchExpressions) && t.matchExpressions.exists(r,
    r.key == 'kubernetes.io/hostname' && r.operator == 'In' && r.values == [variables.node]))`

// applyNodeVolumesPolicy lets a node create and delete only volumes bound to
// itself: RBAC cannot tell one node's volumes from another's.
func applyNodeVolumesPolicy(ctx context.Context, c kubernetes.Interface, labels map[string]string) error {
	fail := admissionv1.Fail
	forbidden := metav1.StatusReasonForbidden
	policy := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: nodeVolumesPolicy, Labels: labels},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update, admissionv1.Delete},
					Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"persistentvolumes"}},
				},
			}}},
			MatchConditions: []admissionv1.MatchCondition{{
				Name:       "from-a-node",
				Expression: `request.userInfo.username.startsWith('system:node:') && 'system:nodes' in request.userInfo.groups`,
			}},
			Variables: []admissionv1.Variable{
				{Name: "node", Expression: `request.userInfo.username.substring(12)`},
				{Name: "pv", Expression: `request.operation == 'DELETE' ? oldObject : object`},
			},
			Validations: []admissionv1.Validation{{
				Expression: nodeVolumesExpr,
				Message:    "a node may create and delete only the persistent volumes bound to itself",
				Reason:     &forbidden,
			}, {
				// An update must not move a volume off the node either.
				Expression: `request.operation != 'UPDATE' || (oldObject != null && oldObject.spec == object.spec)`,
				Message:    "a node may not change a persistent volume's spec",
				Reason:     &forbidden,
			}},
		},
	}
	if cur, err := c.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, policy.Name, metav1.GetOptions{}); err == nil {
		policy.ResourceVersion = cur.ResourceVersion
		if _, err := c.AdmissionregistrationV1().ValidatingAdmissionPolicies().Update(ctx, policy, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("updating admission policy %s: %w", policy.Name, err)
		}
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading admission policy %s: %w", policy.Name, err)
	} else if _, err := c.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating admission policy %s: %w", policy.Name, err)
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: nodeVolumesPolicy, Labels: labels},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        nodeVolumesPolicy,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
		},
	}
	if _, err := c.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating admission policy binding %s: %w", binding.Name, err)
	}
	return nil
}

// waitNodeVolumesEnforced returns once the API server applies the node
// volumes policy: the server reads new policies asynchronously, and until
// it does a node could still delete another node's volumes. The probe is a
// dry-run create, as a node, of a volume bound to another node.
func waitNodeVolumesEnforced(ctx context.Context, kubeconfig string) error {
	rc, err := kubeclient.Config(kubeconfig)
	if err != nil {
		return err
	}
	rc = rest.CopyConfig(rc)
	rc.Impersonate = rest.ImpersonationConfig{UserName: "system:node:kubox-policy-probe", Groups: []string{pki.NodesGroup, "system:authenticated"}}
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "kubox-policy-probe"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/nonexistent"}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{"another-node"}}},
			}}}},
		},
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last error
	for {
		_, err := c.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if apierrors.IsForbidden(err) && strings.Contains(err.Error(), nodeVolumesPolicy) {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("admission policy %s is not enforced after a minute (last probe: %v)", nodeVolumesPolicy, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
