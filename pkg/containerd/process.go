package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
)

// Process supervises containerd as a child process.
type Process struct {
	Config     Config
	ConfigFile string    // where the rendered configuration is written
	Log        io.Writer // containerd's output, one line per log line

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Name implements component.Component.
func (p *Process) Name() string { return "containerd" }

// Start writes the configuration and starts `kubox containerd`.
func (p *Process) Start(ctx context.Context, fail func(error)) error {
	data, err := Render(p.Config)
	if err != nil {
		return err
	}
	for _, d := range []string{filepath.Dir(p.ConfigFile), p.Config.Root, p.Config.State, p.Config.CNIConfDir, p.Config.RegistryConfigDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("cannot create %s: %w", d, err)
		}
	}
	if err := os.WriteFile(p.ConfigFile, data, 0o600); err != nil {
		return fmt.Errorf("cannot write %s: %w", p.ConfigFile, err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "containerd", "--config", p.ConfigFile)
	cmd.Env = append(filteredEnv(), "PATH="+p.Config.BinDir+":"+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = p.Log, p.Log
	// containerd dies with kubox (Pdeathsig), but the shims it starts run
	// in their own process groups, so containers outlive both.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	// Pdeathsig fires when the starting thread ends; keep this one alive.
	startErr := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			startErr <- err
			return
		}
		startErr <- nil
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
		// The thread stays locked and exits with this goroutine, which is
		// fine: the child is gone.
	}()
	if err := <-startErr; err != nil {
		return fmt.Errorf("cannot start containerd: %w", err)
	}
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	go func() {
		<-done
		select {
		case <-ctx.Done():
		default:
			p.mu.Lock()
			err := p.err
			stopping := p.cmd == nil
			p.mu.Unlock()
			if !stopping {
				fail(fmt.Errorf("exited: %v", err))
			}
		}
	}()
	return nil
}

// filteredEnv drops variables that would point containerd elsewhere.
func filteredEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "PATH=") || strings.HasPrefix(e, "CONTAINERD_") || strings.HasPrefix(e, "NOTIFY_SOCKET=") {
			continue
		}
		env = append(env, e)
	}
	return env
}

// Ready waits until containerd answers on its socket.
func (p *Process) Ready(ctx context.Context) error {
	for {
		err := p.ping(ctx)
		if err == nil {
			return nil
		}
		p.mu.Lock()
		done := p.done
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return err
		case <-done:
			return errors.New("containerd exited while starting; see its log lines above")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *Process) ping(ctx context.Context) error {
	if _, err := os.Stat(p.Config.Address); err != nil {
		return err
	}
	c, err := client.New(p.Config.Address, client.WithTimeout(2*time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	serving, err := c.IsServing(cctx)
	if err != nil {
		return err
	}
	if !serving {
		return errors.New("containerd is not serving yet")
	}
	return nil
}

// Stop ends containerd (not the containers: their shims stay).
func (p *Process) Stop(ctx context.Context) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return errors.New("containerd did not stop in time and was killed")
	}
}
