package idlegc

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// targetOnceStarted runs the component from the default target and
// returns the target it set, restoring the process's own afterwards.
func targetOnceStarted(t *testing.T) int {
	t.Helper()
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	ctx, cancel := context.WithCancel(context.Background())
	c := Component(nopLog{})
	if err := c.Start(ctx, func(error) {}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	got := debug.SetGCPercent(100) // returns the target it replaces
	cancel()
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestLowersTarget(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	if got := targetOnceStarted(t); got != Percent {
		t.Errorf("GC target %d once started, want %d", got, Percent)
	}
}

func TestUserChoiceWins(t *testing.T) {
	t.Setenv("GOGC", "100")
	if got := targetOnceStarted(t); got != 100 {
		t.Errorf("GC target %d with the user's GOGC=100, want it left alone", got)
	}
}

// A process that stops before its delay keeps its GC target.
func TestRunStopsEarly(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Run(ctx, time.Hour, nil); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return once its context ended")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC target %d after an early stop, want 100 left alone", got)
	}
}

// The test binary's read-only mappings were resident (its code ran);
// after the release most of them are not, and the code still runs.
func TestReleaseExecutable(t *testing.T) {
	maps, err := executableMappings()
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) == 0 {
		t.Fatal("no read-only mapping of /proc/self/exe in /proc/self/smaps")
	}
	before, after, err := ReleaseExecutable()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("executable resident: %d KiB before, %d KiB after", before, after)
	if before < 1024 {
		t.Fatalf("only %d KiB of the executable resident before the release; the test cannot tell", before)
	}
	if after > before/2 {
		t.Errorf("%d KiB of the executable still resident after the release, from %d KiB", after, before)
	}
	// Code released above runs again: it faults back in.
	if _, _, err := ReleaseExecutable(); err != nil {
		t.Fatal(err)
	}
}

func TestParseSmaps(t *testing.T) {
	smaps := `00400000-00500000 r-xp 00000000 fd:01 1234 /usr/local/bin/kubox
Rss:                 100 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
00500000-00600000 r--p 00100000 fd:01 1234 /usr/local/bin/kubox
Rss:                  40 kB
Anonymous:             8 kB
00600000-00700000 rw-p 00200000 fd:01 1234 /usr/local/bin/kubox
Rss:                  12 kB
Anonymous:            12 kB
00700000-00800000 r--p 00000000 fd:01 999 /usr/lib/libc.so.6
Rss:                  50 kB
Anonymous:             0 kB
`
	got, err := parseSmaps([]byte(smaps), 0xfd, 1, 1234)
	if err != nil {
		t.Fatal(err)
	}
	want := []mapping{{start: 0x400000, end: 0x500000, rssKB: 100}, {start: 0x500000, end: 0x600000, rssKB: 40, anonKB: 8}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("mapping %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

type nopLog struct{}

func (nopLog) Infof(string, ...any)  {}
func (nopLog) Debugf(string, ...any) {}

// A burst turns the default target back on at once; the tight one
// returns only after a calm spell, and a middling rate does not count
// towards it.
func TestPolicy(t *testing.T) {
	p := policy{percent: Percent}
	steps := []struct {
		rate    float64
		want    int
		changed bool
	}{
		{1 << 20, Percent, false},
		{BusyRate, 100, true},
		{BusyRate * 4, 100, false},
		{1 << 20, 100, false},
		{1 << 20, 100, false},
		{BusyRate * 3 / 4, 100, false}, // neither busy nor calm: the spell starts again
		{1 << 20, 100, false},
		{1 << 20, 100, false},
		{1 << 20, 100, false},
		{1 << 20, 100, false},
		{1 << 20, Percent, true},
		{1 << 20, Percent, false},
	}
	for i, s := range steps {
		got, changed := p.next(s.rate)
		if got != s.want || changed != s.changed {
			t.Fatalf("step %d, rate %.0f: target %d (changed %v), want %d (changed %v)", i, s.rate, got, changed, s.want, s.changed)
		}
	}
}

// A file's pages that no process maps leave the page cache once evicted.
func TestEvict(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	var fs unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type == unix.TMPFS_MAGIC {
		t.Skip("the temporary directory is on tmpfs, whose pages are not a cache")
	}
	data := make([]byte, 24<<20)
	for i := range data {
		data[i] = byte(i)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Written pages are dirty until written back, and no eviction drops
	// a dirty page.
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, f); err != nil {
		t.Fatal(err)
	}
	if got := cachedShare(t, f); got < 0.9 {
		t.Fatalf("%.0f%% of the file in the page cache after reading it, want 90%% or more; the test cannot tell", got*100)
	}
	if err := evict(path); err != nil {
		t.Fatal(err)
	}
	if got := cachedShare(t, f); got > 0.1 {
		t.Errorf("%.0f%% of the file in the page cache after the eviction, want 10%% or less", got*100)
	}
}

// cachedShare tells which share of f's pages are in the page cache.
func cachedShare(t *testing.T, f *os.File) float64 {
	t.Helper()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return float64(n) / float64(len(vec))
}

// The release waits for calmReads calm reads in a row: a busy read in
// between starts the count again.
func TestWaitCalm(t *testing.T) {
	rates := []float64{BusyRate, BusyRate / 4, BusyRate, BusyRate / 4, BusyRate / 4, BusyRate}
	reads := 0
	rate := func() float64 { r := rates[reads]; reads++; return r }
	if !waitCalm(context.Background(), time.Millisecond, 2, rate) {
		t.Fatal("waitCalm gave up with its context alive")
	}
	if reads != 5 {
		t.Errorf("waitCalm returned after %d reads, want 5 (busy, calm, busy, calm, calm)", reads)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if waitCalm(ctx, time.Millisecond, 2, func() float64 { return BusyRate }) {
		t.Error("waitCalm returned calm for a process that stays busy")
	}
}
