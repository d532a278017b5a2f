package idlegc

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// childEnv makes the test binary a child that runs Run, as containerd's
// process does, and prints what it logs.
const childEnv = "IDLEGC_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		fmt.Println("child started")
		Run(context.Background(), time.Hour, func(format string, args ...any) {
			fmt.Printf(format+"\n", args...)
		})
		return
	}
	os.Exit(m.Run())
}

// A child running the same executable releases its pages when its parent
// settles; a child running another executable is left alone (SIGUSR2
// would end it).
func TestChildrenRelease(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(self)
	child.Env = append(os.Environ(), childEnv+"=1")
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	other := exec.Command("sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	otherDone := make(chan error, 1)
	go func() { otherDone <- other.Wait() }()
	defer func() { _ = other.Process.Kill() }()

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// The child listens once Run has started; until it says it released,
	// ask again.
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for released := false; !released; {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("the child exited before it released its pages")
			}
			released = strings.Contains(line, "released")
		case <-tick.C:
			n, err := signalChildren()
			if err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Fatalf("signalled %d children, want 1 (the one running this executable)", n)
			}
		case <-deadline:
			t.Fatal("the child did not release its pages within 20 s of being asked")
		}
	}
	select {
	case err := <-otherDone:
		t.Fatalf("a child running another executable ended: %v", err)
	default:
	}
	// The child goes on running; asked again, it releases again.
	if _, err := signalChildren(); err != nil {
		t.Fatal(err)
	}
	select {
	case line, ok := <-lines:
		if !ok || !strings.Contains(line, "released") {
			t.Fatalf("asked a second time, the child said %q (open %v), want another release", line, ok)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("asked a second time, the child did not release within 20 s")
	}
}

func TestParentPID(t *testing.T) {
	for stat, want := range map[string]int{
		"123 (kubox) S 45 123 123 0":    45,
		"123 (we ird) (name) R 7 1 1 0": 7,
		"123 (kubox":                    -1,
		"123 (kubox) S":                 -1,
	} {
		if got := parentPID([]byte(stat)); got != want {
			t.Errorf("parentPID(%q) = %d, want %d", stat, got, want)
		}
	}
}
