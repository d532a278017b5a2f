package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// csiPluginBuild: tests/csiplugin.
var csiPluginBuild = &built{prefix: "kubox-csiplugin-", make: func(dir string) error {
	if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "csiplugin"), "../csiplugin").CombinedOutput(); err != nil {
		return fmt.Errorf("go build tests/csiplugin: %v\n%s", err, out)
	}
	return nil
}}

// checkCSIRegistration: a CSI driver started beside the node's kubelet (as
// a CSI driver's node plugin is, through the kubelet's plugin registration
// directory) is registered: the node's CSINode lists it with the node ID it
// reported. On a server node this goes through the same kubelet that shares
// its process with the controller-manager.
func checkCSIRegistration(t *testing.T, kubectl func(args ...string) (string, error), dataDir, node, driver string) {
	t.Helper()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "csiplugin.log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(filepath.Join(csiPluginBuild.get(t), "csiplugin"),
		"-registry", filepath.Join(dataDir, "agent", "kubelet", "plugins_registry"),
		"-name", driver, "-node-id", "id-"+node, "-dir", dir)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	waitFor(t, "CSI driver "+driver+" in "+node+"'s CSINode", time.Minute, func() (bool, string) {
		got, err := kubectl("get", "csinode", node, "-o", `jsonpath={range .spec.drivers[*]}{.name}={.nodeID} {end}`)
		printed, _ := os.ReadFile(logPath)
		return err == nil && strings.Contains(got, driver+"=id-"+node), fmt.Sprintf("drivers %q; the driver printed %q", got, printed)
	})
}
