package main

import "testing"

// TestDataDirArg: only kubox's own --data-dir picks the unpack dir, never
// one among the arguments of a tool kubox runs.
func TestDataDirArg(t *testing.T) {
	for _, c := range []struct {
		argv []string
		dir  string
		ok   bool
	}{
		{[]string{"kubox", "server", "-d", "/x"}, "/x", true},
		{[]string{"kubox", "server", "--data-dir=/x"}, "/x", true},
		{[]string{"/usr/local/bin/kubox", "agent", "-d", "/x", "--token", "t"}, "/x", true},
		{[]string{"kubox", "killall", "--data-dir", "/x"}, "/x", true},
		{[]string{"kubox", "--version", "server", "-d", "/x"}, "/x", true},
		{[]string{"kubox", "server", "--", "-d", "/x"}, "", false},
		{[]string{"kubox", "server"}, "", false},
		{[]string{"kubox", "kubectl", "get", "ns", "-d", "/tmp/x"}, "", false},
		{[]string{"kubox", "kubectl", "-d", "/tmp/x", "get", "ns"}, "", false},
		{[]string{"kubectl", "-d", "/tmp/x", "get", "ns"}, "", false},
		{[]string{"/usr/local/bin/kubectl", "get", "ns", "--data-dir=/tmp/x"}, "", false},
		{[]string{"kubox", "ctr", "-d", "/x", "images", "ls"}, "", false},
		{[]string{"ctr", "-d", "/x"}, "", false},
		{[]string{"crictl", "-d", "/x"}, "", false},
		{[]string{"kubox", "crictl", "-d", "/x"}, "", false},
		{[]string{"containerd", "-d", "/x"}, "", false},
		{[]string{"kubox", "containerd", "-d", "/x"}, "", false},
		{[]string{"kubox", "check-config", "-d", "/x"}, "", false},
		{[]string{"kubox", "token", "list", "-d", "/x"}, "", false},
		{[]string{"kubox", "help", "server", "-d", "/x"}, "", false},
		{[]string{"kubox", "-d", "/x", "server"}, "", false}, // "/x" is the subcommand
		{[]string{"kubox", "--", "-d", "x"}, "", false},
		{[]string{"kubox", "--", "server", "-d", "x"}, "", false},
		{[]string{"kubox"}, "", false},
		{nil, "", false},
	} {
		dir, ok := dataDirArg(c.argv)
		if dir != c.dir || ok != c.ok {
			t.Errorf("dataDirArg(%q) = %q, %v; want %q, %v", c.argv, dir, ok, c.dir, c.ok)
		}
	}
}
