package paths

import "testing"

func TestDataDirArg(t *testing.T) {
	for _, c := range []struct {
		args []string
		dir  string
		ok   bool
	}{
		{[]string{"kubox", "server", "--data-dir", "/x"}, "/x", true},
		{[]string{"kubox", "server", "--data-dir=/x"}, "/x", true},
		{[]string{"kubox", "agent", "-d", "/x"}, "/x", true},
		{[]string{"-d=/x"}, "/x", true},
		{[]string{"-data-dir", "/x"}, "/x", true},
		{[]string{"--d", "/x"}, "/x", true},
		{[]string{"-d", "/x", "--data-dir", "/y"}, "/y", true},
		{[]string{"-d", "--", "--data-dir", "/y"}, "/y", true}, // "--" is -d's value
		{[]string{"-d", "--data-dir"}, "--data-dir", true},
		{[]string{"--", "-d", "/x"}, "", false},
		{[]string{"-d=/x", "--", "-d", "/y"}, "/x", true},
		{[]string{"-d"}, "", false},
		{[]string{"--debug", "--dd", "/x", "---d", "/y", "d", "/z"}, "", false},
		{nil, "", false},
	} {
		dir, ok := DataDirArg(c.args)
		if dir != c.dir || ok != c.ok {
			t.Errorf("DataDirArg(%q) = %q, %v; want %q, %v", c.args, dir, ok, c.dir, c.ok)
		}
	}
}
