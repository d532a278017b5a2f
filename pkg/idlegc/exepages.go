package idlegc

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// mapping is one read-only, private mapping of the executable file, as
// /proc/self/smaps describes it.
type mapping struct {
	start, end uintptr
	rssKB      int64
	anonKB     int64
}

// ReleaseExecutable drops this process's page-table entries for the
// executable's read-only mappings (code, read-only data, the symbol and
// line tables), and returns the resident kilobytes before and after.
//
// kubox is one executable holding all of Kubernetes: start-up runs every
// package's init and most components' set-up code, so nearly the whole
// file ends up mapped, although an idle node runs a small part of it
// again. Code still in use comes back with a fault, and the rest is no
// longer pages the kernel keeps for a running executable.
//
// The mappings are also marked for random access (MADV_RANDOM): a page
// read from the file again is read alone, without the read-around that
// fills the page cache with large folios, each of which a fault maps
// whole (on ext4 with Linux 6.18, 0.9 MiB mapped per page touched,
// against 4 KiB). EvictExecutable drops the large folios left behind.
//
// Only mappings with no anonymous pages are released: a read-only mapping
// with private copies (relocated data of a position-independent build)
// would lose them.
func ReleaseExecutable() (beforeKB, afterKB int64, err error) {
	maps, err := executableMappings()
	if err != nil {
		return 0, 0, err
	}
	for _, m := range maps {
		beforeKB += m.rssKB
		if m.anonKB != 0 {
			continue
		}
		for _, advice := range []uintptr{unix.MADV_DONTNEED, unix.MADV_RANDOM} {
			if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, advice); errno != 0 {
				return beforeKB, 0, fmt.Errorf("madvise(%d) %#x-%#x: %w", advice, m.start, m.end, errno)
			}
		}
	}
	after, err := executableMappings()
	if err != nil {
		return beforeKB, 0, err
	}
	for _, m := range after {
		afterKB += m.rssKB
	}
	return beforeKB, afterKB, nil
}

// EvictExecutable drops the executable's pages that no process maps from
// the page cache (they are clean: the file is read, never written), so
// that the pages ReleaseExecutable's mappings read again come back one by
// one instead of as the large folios start-up's read-around made. Pages
// another process still maps stay; a process that runs the same
// executable releases its mappings first (see signalChildren).
func EvictExecutable() error { return evict("/proc/self/exe") }

func evict(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("fadvise %s: %w", f.Name(), err)
	}
	return nil
}

// executableMappings lists the read-only private mappings of the file
// /proc/self/exe names, matched by device and inode so that a binary
// replaced on disk (an upgrade while running) is still found.
func executableMappings() ([]mapping, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return nil, fmt.Errorf("stat /proc/self/exe: %w", err)
	}
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	return parseSmaps(data, unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
}

// parseSmaps picks from smaps text the read-only private mappings of the
// file with the given device and inode, with their Rss and Anonymous sizes.
func parseSmaps(data []byte, major, minor uint32, ino uint64) ([]mapping, error) {
	var out []mapping
	var cur *mapping
	dev := fmt.Sprintf("%02x:%02x", major, minor)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") {
			// A mapping's header: range perms offset dev inode [path].
			cur = nil
			if len(f) < 5 {
				return nil, fmt.Errorf("smaps: unexpected line %q", line)
			}
			perms, inode := f[1], f[4]
			if len(perms) != 4 || perms[1] == 'w' || perms[3] != 'p' || f[3] != dev || inode != strconv.FormatUint(ino, 10) {
				continue
			}
			lo, hi, ok := strings.Cut(f[0], "-")
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if !ok || err1 != nil || err2 != nil {
				return nil, fmt.Errorf("smaps: bad range in %q", line)
			}
			out = append(out, mapping{start: uintptr(start), end: uintptr(end)})
			cur = &out[len(out)-1]
			continue
		}
		if cur == nil || len(f) < 2 {
			continue
		}
		switch f[0] {
		case "Rss:":
			cur.rssKB, _ = strconv.ParseInt(f[1], 10, 64)
		case "Anonymous:":
			cur.anonKB, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return out, sc.Err()
}
