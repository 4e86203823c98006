package args

import (
	"os"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

// The tests read the test process's own memory: process_vm_readv on our own
// pid needs no privilege, and mmap gives pages that are readable, PROT_NONE or
// unmapped exactly where a case wants them.

// self is the tid the tests read from.
var self = os.Getpid()

// region is a run of pages laid out as a layout string says: 'R' a
// read-write page, 'G' a PROT_NONE guard page, 'U' a page that was mapped and
// then unmapped. Offsets are from the start of the first page.
type region struct {
	t      testing.TB
	layout string
	mem    []byte
	base   uint64
}

func mapRegion(t testing.TB, layout string) *region {
	t.Helper()
	mem, err := unix.Mmap(-1, 0, len(layout)*PageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	// reflect gives the mapping's address without importing unsafe (which
	// this package confines to *_unsafe.go files).
	r := &region{t: t, layout: layout, mem: mem, base: uint64(reflect.ValueOf(mem).Pointer())}
	t.Cleanup(func() {
		if err := unix.Munmap(mem); err != nil {
			t.Errorf("munmap: %v", err)
		}
	})
	for i, c := range layout {
		page := uintptr(r.base) + uintptr(i*PageSize)
		switch c {
		case 'R':
		case 'G':
			if err := unix.Mprotect(mem[i*PageSize:(i+1)*PageSize], unix.PROT_NONE); err != nil {
				t.Fatalf("mprotect: %v", err)
			}
		case 'U':
			// unix.Munmap only takes whole mappings; unmap one page
			// directly. A later mmap could reuse the hole, but nothing
			// in these single-goroutine tests maps a page in between.
			if _, _, e := unix.Syscall(unix.SYS_MUNMAP, page, PageSize, 0); e != 0 {
				t.Fatalf("munmap page %d: %v", i, e)
			}
		default:
			t.Fatalf("bad layout %q", layout)
		}
	}
	return r
}

// readable reports whether the byte at off is in an 'R' page.
func (r *region) readable(off int) bool {
	p := off / PageSize
	return off >= 0 && p < len(r.layout) && r.layout[p] == 'R'
}

// fill writes pattern, repeated from offset from, over every readable byte.
func (r *region) fill(from int, pattern string) {
	for i := range r.mem {
		if r.readable(i) {
			r.mem[i] = pattern[((i-from)%len(pattern)+len(pattern))%len(pattern)]
		}
	}
}

// put writes b at off, skipping bytes that fall in unreadable pages, and
// returns the address of off.
func (r *region) put(off int, b []byte) uint64 {
	for i, c := range b {
		if r.readable(off + i) {
			r.mem[off+i] = c
		}
	}
	return r.addr(off)
}

// set writes one byte at off, which must be readable.
func (r *region) set(off int, c byte) {
	if !r.readable(off) {
		r.t.Fatalf("offset %d is not in a readable page of %q", off, r.layout)
	}
	r.mem[off] = c
}

func (r *region) addr(off int) uint64 { return r.base + uint64(off) }

// end is the offset just past the last page.
func (r *region) end() int { return len(r.layout) * PageSize }

func errnoOf(err error) unix.Errno {
	if err == nil {
		return 0
	}
	return Errno(err)
}

// addrOf returns the address of b's first byte for passing to a raw syscall;
// the caller keeps b alive (runtime.KeepAlive) until the syscall returned.
func addrOf(b []byte) uintptr { return reflect.ValueOf(b).Pointer() }

// atFdcwd is AT_FDCWD as a syscall argument.
var atFdcwd = func() uintptr { fd := unix.AT_FDCWD; return uintptr(fd) }()
