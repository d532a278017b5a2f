package integration

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExternalSQL: two servers share an external SQL datastore (PostgreSQL,
// MariaDB, each started by the test on loopback) with one --token: the
// second takes the cluster's CAs from the datastore, each sees the other's
// writes, and once one is killed the other keeps writing. A wrong password,
// a missing token and a wrong one are refused in one line each.
func TestExternalSQL(t *testing.T) {
	token := strings.Repeat("5e", 32)
	for _, db := range []struct {
		name  string
		start func(t *testing.T, password string) (dsnFor func(password string) string)
	}{
		{"postgres", startPostgres},
		{"mariadb", startMariaDB},
	} {
		t.Run(db.name, func(t *testing.T) {
			dsnFor := db.start(t, "kubox-pw")
			dsn := dsnFor("kubox-pw")

			line := failedServerLine(t, "--datastore-endpoint", dsnFor("wrong-pw"))
			masked := strings.Replace(dsnFor("wrong-pw"), "wrong-pw", "***", 1)
			for _, w := range []string{"refused the login", masked, "--datastore-endpoint"} {
				if !strings.Contains(line, w) {
					t.Errorf("wrong password: last line %q lacks %q", line, w)
				}
			}

			one := newServer(t, "--datastore-endpoint", dsn, "--token", token)
			two := newServer(t, "--datastore-endpoint", dsn, "--token", token)
			one.StartReady()
			two.StartReady()
			for _, name := range []string{"server/tls/server-ca.crt", "server/tls/client-ca.key", "server/tls/service.key"} {
				a, _ := os.ReadFile(filepath.Join(one.DataDir, name))
				b, _ := os.ReadFile(filepath.Join(two.DataDir, name))
				if len(a) == 0 || !bytes.Equal(a, b) {
					t.Errorf("%s differs between the servers", name)
				}
			}
			one.MustKubectl("create", "namespace", "from-one")
			two.MustKubectl("create", "namespace", "from-two")
			for _, s := range []*server{one, two} {
				s.MustKubectl("get", "namespace", "from-one", "from-two")
			}

			line = failedServerLine(t, "--datastore-endpoint", dsn)
			if !strings.Contains(line, "holds a cluster already") || !strings.Contains(line, "--token") {
				t.Errorf("no token: last line %q, want a refusal naming --token", line)
			}
			line = failedServerLine(t, "--datastore-endpoint", dsn, "--token", strings.Repeat("0f", 32))
			if !strings.Contains(line, "does not open the cluster's files") || !strings.Contains(line, "--token") {
				t.Errorf("wrong token: last line %q, want a refusal naming --token", line)
			}

			one.Kill()
			waitFor(t, "a write through the second server once the first is killed", 30*time.Second, func() (bool, string) {
				out, err := two.Kubectl("create", "configmap", "after-kill", "-n", "from-one", "--from-literal", "k=v")
				return err == nil || strings.Contains(out, "AlreadyExists"), out
			})
			two.MustKubectl("get", "configmap", "after-kill", "-n", "from-one")
		})
	}
	t.Run("bad endpoints", func(t *testing.T) {
		for _, c := range []struct{ endpoint, want string }{
			{"postgres://kubox:s3cret@127.0.0.1:notaport/kubox", "invalid --datastore-endpoint postgres://kubox:***@127.0.0.1:notaport/kubox"},
			{fmt.Sprintf("mysql://kubox:s3cret@tcp(127.0.0.1:%d)/kubox", freePort(t)), "cannot reach the mysql datastore at mysql://kubox:***@tcp(127.0.0.1:"},
		} {
			begin := time.Now()
			line := failedServerLine(t, "--datastore-endpoint", c.endpoint)
			if !strings.Contains(line, c.want) || strings.Contains(line, "s3cret") {
				t.Errorf("last line %q, want %q and no password", line, c.want)
			}
			if took := time.Since(begin); took > 20*time.Second {
				t.Errorf("kubox took %s to give up on %s", took, c.endpoint)
			}
		}
	})
}

// failedServerLine runs a control-plane-only server that must fail, and
// returns its last line.
func failedServerLine(t *testing.T, args ...string) string {
	t.Helper()
	return failingRun(t, newServer(t, args...))
}

// dbDir is a directory for a database's files that its service user can
// reach, removed when the test ends.
func dbDir(t *testing.T, prefix string, owner *user.User) (string, *syscall.Credential) {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	uid, _ := strconv.Atoi(owner.Uid)
	gid, _ := strconv.Atoi(owner.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return dir, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// startDB runs a database server until the test ends and waits for its
// port to accept connections.
func startDB(t *testing.T, name string, port int, cred *syscall.Credential, logFile string, argv ...string) {
	t.Helper()
	log, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		log.Close()
	})
	waitFor(t, name+" accepting connections", 60*time.Second, func() (bool, string) {
		select {
		case <-exited:
			data, _ := os.ReadFile(logFile)
			t.Fatalf("%s exited:\n%s", name, data)
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
}

func lookupUser(t *testing.T, name string) *user.User {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Skipf("no %s user (%v): run scripts/install-deps.sh", name, err)
	}
	return u
}

func mustRun(t *testing.T, cred *syscall.Credential, argv ...string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

// startPostgres runs a PostgreSQL of its own on a loopback port, with a
// superuser kubox whose password is password.
func startPostgres(t *testing.T, password string) func(string) string {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		t.Skip("no PostgreSQL: run scripts/install-deps.sh")
	}
	bin := filepath.Dir(bins[len(bins)-1])
	dir, cred := dbDir(t, "kubox-pg-", lookupUser(t, "postgres"))
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chown(pwfile, int(cred.Uid), int(cred.Gid))
	data := filepath.Join(dir, "data")
	mustRun(t, cred, filepath.Join(bin, "initdb"), "-D", data, "-U", "kubox", "--pwfile", pwfile,
		"--auth-host", "scram-sha-256", "--auth-local", "trust", "--no-sync")
	port := freePort(t)
	startDB(t, "postgres", port, cred, filepath.Join(dir, "postgres.log"), filepath.Join(bin, "postgres"), "-D", data,
		"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-k", dir, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "max_connections=200")
	return func(pw string) string {
		return fmt.Sprintf("postgres://kubox:%s@127.0.0.1:%d/kubox?sslmode=disable", pw, port)
	}
}

// startMariaDB runs a MariaDB of its own on a loopback port, with a user
// kubox whose password is password.
func startMariaDB(t *testing.T, password string) func(string) string {
	if _, err := exec.LookPath("mariadb-install-db"); err != nil {
		t.Skip("no MariaDB: run scripts/install-deps.sh")
	}
	dir, cred := dbDir(t, "kubox-mariadb-", lookupUser(t, "mysql"))
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "mysqld.sock")
	mustRun(t, cred, "mariadb-install-db", "--no-defaults", "--user=mysql", "--datadir="+data, "--auth-root-authentication-method=socket",
		"--skip-test-db", "--skip-name-resolve")
	port := freePort(t)
	startDB(t, "mariadbd", port, cred, filepath.Join(dir, "mariadbd.log"), "/usr/sbin/mariadbd", "--no-defaults",
		"--datadir="+data, "--socket="+sock, "--port="+strconv.Itoa(port), "--bind-address=127.0.0.1",
		"--pid-file="+filepath.Join(dir, "mariadbd.pid"), "--skip-name-resolve", "--skip-log-bin",
		"--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=64M", "--max-connections=300")
	sql := fmt.Sprintf("CREATE USER 'kubox'@'%%' IDENTIFIED BY '%s'; GRANT ALL ON *.* TO 'kubox'@'%%';", password)
	mustRun(t, cred, "mariadb", "--no-defaults", "--socket="+sock, "-u", "mysql", "-e", sql)
	return func(pw string) string { return fmt.Sprintf("mysql://kubox:%s@tcp(127.0.0.1:%d)/kubox", pw, port) }
}
