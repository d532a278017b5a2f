package bundle

import (
	"embed"
	"os"
	"reflect"
	"syscall"
	"unsafe"
)

// embeddedData is the content of the file name in fsys where the executable
// maps it (no copy), or "" when it cannot be found. embed.FS offers no
// such view, so its fields are read by name through reflection; should a
// Go release rename them, this finds nothing and nothing is released.
func embeddedData(fsys embed.FS, name string) string {
	files := reflect.ValueOf(fsys).FieldByName("files")
	if files.Kind() != reflect.Pointer || files.IsNil() || files.Elem().Kind() != reflect.Slice {
		return ""
	}
	list := files.Elem()
	for i := range list.Len() {
		f := list.Index(i)
		if f.Kind() != reflect.Struct {
			return ""
		}
		n, d := f.FieldByName("name"), f.FieldByName("data")
		if n.Kind() != reflect.String || d.Kind() != reflect.String {
			return ""
		}
		if n.String() == name {
			return d.String()
		}
	}
	return ""
}

// releasePages tells the kernel that this process no longer needs the
// whole pages of data, which must lie in the executable's read-only
// mapping (as embeddedData's do): memory of the heap would read as zeros.
// The payload is read once per start (all of it on a first start), and
// the pages it was read through would otherwise stay in the process's
// resident memory until the kernel reclaims them; they are still in the
// page cache, and a later read maps them again.
func releasePages(data string) {
	page := os.Getpagesize()
	start := uintptr(unsafe.Pointer(unsafe.StringData(data)))
	skip := (page - int(start%uintptr(page))) % page
	n := (len(data) - skip) / page * page
	if len(data) == 0 || n <= 0 {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(data)), skip)), n)
	_ = syscall.Madvise(b, syscall.MADV_DONTNEED) // a hint: memory it cannot drop stays as it was
}
