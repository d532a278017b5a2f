// Command csiplugin is the node half of a CSI driver that provides no
// volumes: enough for a kubelet to register it through its plugin
// registration directory and record it in the node's CSINode. Tests run it
// beside a kubox node to check what a real CSI driver's registration does.
//
// Usage: csiplugin -registry DIR -name DRIVER -node-id ID -dir DIR
// It prints "registered" or "registration failed: <why>" for each status the
// kubelet reports, and runs until killed.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

type registration struct {
	registerapi.UnimplementedRegistrationServer
	name, endpoint string
}

func (r *registration) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	return &registerapi.PluginInfo{
		Type:              registerapi.CSIPlugin,
		Name:              r.name,
		Endpoint:          r.endpoint,
		SupportedVersions: []string{"1.0.0"},
	}, nil
}

func (r *registration) NotifyRegistrationStatus(_ context.Context, s *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	if s.PluginRegistered {
		fmt.Println("registered")
	} else {
		fmt.Println("registration failed:", s.Error)
	}
	return &registerapi.RegistrationStatusResponse{}, nil
}

type identity struct {
	csi.UnimplementedIdentityServer
	name string
}

func (i *identity) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: i.name, VendorVersion: "0.0.0"}, nil
}

func (i *identity) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{}, nil
}

func (i *identity) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{}, nil
}

type node struct {
	csi.UnimplementedNodeServer
	nodeID string
}

func (n *node) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: n.nodeID}, nil
}

func (n *node) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{}, nil
}

// serve listens on a fresh unix socket at path and serves s on it.
func serve(path string, s *grpc.Server) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	go func() {
		if err := s.Serve(l); err != nil {
			fmt.Fprintln(os.Stderr, "csiplugin:", err)
			os.Exit(1)
		}
	}()
	return nil
}

func main() {
	registry := flag.String("registry", "", "the kubelet's plugin registration directory")
	name := flag.String("name", "", "the driver's name")
	nodeID := flag.String("node-id", "", "the node ID the driver reports")
	dir := flag.String("dir", "", "directory for the driver's CSI socket")
	flag.Parse()
	if *registry == "" || *name == "" || *nodeID == "" || *dir == "" {
		fmt.Fprintln(os.Stderr, "usage: csiplugin -registry DIR -name DRIVER -node-id ID -dir DIR")
		os.Exit(2)
	}
	endpoint := filepath.Join(*dir, "csi.sock")
	driver := grpc.NewServer()
	csi.RegisterIdentityServer(driver, &identity{name: *name})
	csi.RegisterNodeServer(driver, &node{nodeID: *nodeID})
	reg := grpc.NewServer()
	registerapi.RegisterRegistrationServer(reg, &registration{name: *name, endpoint: endpoint})
	// The driver first: the kubelet calls it as soon as it sees the
	// registration socket.
	if err := serve(endpoint, driver); err != nil {
		fmt.Fprintln(os.Stderr, "csiplugin:", err)
		os.Exit(1)
	}
	if err := os.MkdirAll(*registry, 0o750); err != nil {
		fmt.Fprintln(os.Stderr, "csiplugin:", err)
		os.Exit(1)
	}
	if err := serve(filepath.Join(*registry, *name+"-reg.sock"), reg); err != nil {
		fmt.Fprintln(os.Stderr, "csiplugin:", err)
		os.Exit(1)
	}
	select {}
}
