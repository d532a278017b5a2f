package embedded

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	kubeletconfig "k8s.io/kubernetes/pkg/kubelet/apis/config"
	kubeletconversion "k8s.io/kubernetes/pkg/kubelet/apis/config/v1beta1"
	"k8s.io/kubernetes/pkg/kubelet/kubeletconfig/configfiles"
	utilfs "k8s.io/kubernetes/pkg/util/filesystem"
)

// mergeKubeletDropins applies the drop-in files of the kubelet's
// --config-dir (*.conf, in lexical order, each a JSON merge patch of the
// v1beta1 KubeletConfiguration) to kc, as the kubelet's own command does;
// kubox starts the kubelet without that command.
func mergeKubeletDropins(kc *kubeletconfig.KubeletConfiguration, dir string) error {
	versioned := &kubeletv1beta1.KubeletConfiguration{}
	if err := kubeletconversion.Convert_config_KubeletConfiguration_To_v1beta1_KubeletConfiguration(kc, versioned, nil); err != nil {
		return err
	}
	merged, err := json.Marshal(versioned)
	if err != nil {
		return err
	}
	want := kubeletv1beta1.SchemeGroupVersion.WithKind("KubeletConfiguration")
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".conf" {
			return err
		}
		loader, err := configfiles.NewFsLoader(&utilfs.DefaultFs{}, path)
		if err != nil {
			return err
		}
		patch, gvk, err := loader.LoadIntoJSON()
		if err != nil {
			return err
		}
		if gvk == nil || *gvk != want {
			return fmt.Errorf("%s: want apiVersion %s and kind %s", path, want.GroupVersion(), want.Kind)
		}
		if merged, err = jsonpatch.MergePatch(merged, patch); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	versioned = &kubeletv1beta1.KubeletConfiguration{}
	if err := json.Unmarshal(merged, versioned); err != nil {
		return err
	}
	kubeletconversion.SetDefaults_KubeletConfiguration(versioned)
	return kubeletconversion.Convert_v1beta1_KubeletConfiguration_To_config_KubeletConfiguration(versioned, kc, nil)
}
