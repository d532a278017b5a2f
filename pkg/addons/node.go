package addons

import (
	"context"
	"time"

	"github.com/kubox-io/kubox/pkg/component"
	"github.com/kubox-io/kubox/pkg/servicelb"
	"github.com/kubox-io/kubox/pkg/storage"
)

// localStorage provisions the node's local-path volumes.
func localStorage(env NodeEnv) []component.Component {
	dir := env.Agent.StorageDir
	if dir == "" {
		dir = env.Paths.StorageDir
	}
	cfg := storage.Config{NodeName: env.Agent.NodeName, StorageDir: dir, Kubeconfig: env.Kubeconfig, Log: env.Log.For("local-storage")}
	return []component.Component{restartable(&component.Func{ComponentName: "local-storage",
		Run: func(ctx context.Context) error { return storage.Run(ctx, cfg) }}, env.Log)}
}

func serviceLBConfig(env NodeEnv) servicelb.Config {
	return servicelb.Config{NodeName: env.Agent.NodeName, Kubeconfig: env.Kubeconfig, Log: env.Log.For("servicelb")}
}

// serviceLB puts the node's address on the LoadBalancer Services it can
// serve.
func serviceLB(env NodeEnv) []component.Component {
	cfg := serviceLBConfig(env)
	return []component.Component{restartable(&component.Func{ComponentName: "servicelb",
		Run: func(ctx context.Context) error { return servicelb.Run(ctx, cfg) }}, env.Log)}
}

// serviceLBOff takes the node's address off every Service once, for a
// cluster where servicelb was turned off after it served.
func serviceLBOff(env NodeEnv) []component.Component {
	cfg := serviceLBConfig(env)
	return []component.Component{&component.Func{ComponentName: "servicelb-off", Run: func(ctx context.Context) error {
		for ctx.Err() == nil {
			err := servicelb.Withdraw(ctx, cfg)
			if err == nil {
				break
			}
			cfg.Log.Errorf("%v (retrying)", err)
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
		}
		<-ctx.Done()
		return nil
	}}}
}
