package args

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// stringCase places a string in a region: the readable bytes are filled with
// pathPattern repeated from off, and a NUL is written at off+nul when nul >= 0.
type stringCase struct {
	name   string
	layout string
	off    int // negative: from the end of the region
	nul    int // position of the NUL relative to off; -1 for none
	limit  int // buffer length; 0 means PathMax
	null   bool
	want   int
	err    error
}

var stringCases = []stringCase{
	{name: "short", layout: "RG", off: 0, nul: 11, want: 11},
	{name: "empty", layout: "RG", off: 0, nul: 0, want: 0},
	{name: "empty at the page's last byte", layout: "RG", off: PageSize - 1, nul: 0, want: 0},
	{name: "NUL is the last byte before a guard page", layout: "RG", off: 100, nul: PageSize - 100 - 1, want: PageSize - 100 - 1},
	{name: "NUL is the last byte before an unmapped page", layout: "RU", off: 100, nul: PageSize - 100 - 1, want: PageSize - 100 - 1},
	{name: "NUL in the next page", layout: "RRG", off: PageSize - 8, nul: 200, want: 200},
	{name: "PATH_MAX-1 bytes and NUL across pages", layout: "RRG", off: 2000, nul: PathMax - 1, want: PathMax - 1},
	{name: "PATH_MAX-1 bytes and NUL ending at a guard page", layout: "RRG", off: 2*PageSize - PathMax, nul: PathMax - 1, want: PathMax - 1},
	{name: "NUL right after PATH_MAX bytes", layout: "RRG", off: 0, nul: PathMax, err: ErrNameTooLong},
	{name: "PATH_MAX bytes up to a guard page", layout: "RG", off: 0, nul: -1, err: ErrNameTooLong},
	{name: "PATH_MAX bytes across pages up to a guard page", layout: "RRG", off: -PageSize - PathMax, nul: -1, err: ErrNameTooLong},
	{name: "PATH_MAX bytes up to an unmapped page", layout: "RRU", off: PageSize, nul: -1, err: ErrNameTooLong},
	{name: "PATH_MAX bytes with more readable after", layout: "RRRG", off: 100, nul: -1, err: ErrNameTooLong},
	{name: "string runs into a guard page", layout: "RG", off: PageSize - 96, nul: -1, err: ErrFault},
	{name: "string runs into an unmapped page", layout: "RU", off: PageSize - 96, nul: -1, err: ErrFault},
	{name: "4000 bytes then a guard page", layout: "RG", off: PageSize - 4000, nul: -1, err: ErrFault},
	{name: "4000 bytes across pages then a guard page", layout: "RRG", off: 2*PageSize - 4000, nul: -1, err: ErrFault},
	{name: "4000 bytes then an unmapped page", layout: "RRU", off: 2*PageSize - 4000, nul: -1, err: ErrFault},
	{name: "starts in a guard page", layout: "GR", off: 10, nul: -1, err: ErrFault},
	{name: "starts in an unmapped page", layout: "UR", off: 10, nul: -1, err: ErrFault},
	{name: "NULL", layout: "R", null: true, err: ErrFault},
	{name: "small buffer fits", layout: "RG", off: 0, nul: 15, limit: 16, want: 15},
	{name: "small buffer too small", layout: "RG", off: 0, nul: 16, limit: 16, err: ErrNameTooLong},
	{name: "small buffer at a guard page", layout: "RG", off: PageSize - 16, nul: -1, limit: 16, err: ErrNameTooLong},
	{name: "small buffer, guard before the limit", layout: "RG", off: PageSize - 15, nul: -1, limit: 16, err: ErrFault},
}

// pathPattern makes any prefix of it an absolute path whose first component
// does not exist, so the kernel answers ENOENT for every string getname
// accepts, wherever the test runs. Its components are shorter than NAME_MAX.
const pathPattern = "/vigil-nonexistent-0c7e/"

func (c stringCase) place(t *testing.T) (*region, uint64) {
	r := mapRegion(t, c.layout)
	off := c.off
	if off < 0 {
		off += r.end()
	}
	r.fill(off, pathPattern)
	if c.nul >= 0 {
		r.set(off+c.nul, 0)
	}
	if c.null {
		return r, 0
	}
	return r, r.addr(off)
}

func TestReadString(t *testing.T) {
	for _, c := range stringCases {
		t.Run(c.name, func(t *testing.T) {
			r, addr := c.place(t)
			limit := c.limit
			if limit == 0 {
				limit = PathMax
			}
			buf := bytes.Repeat([]byte{0xff}, limit)
			n, err := ReadString(self, addr, buf)
			if err != c.err || n != c.want {
				t.Fatalf("ReadString = %d, %v; want %d, %v", n, err, c.want, c.err)
			}
			if err != nil {
				return
			}
			if buf[n] != 0 {
				t.Errorf("buf[%d] = %#x, want NUL", n, buf[n])
			}
			off := int(addr - r.base)
			if !bytes.Equal(buf[:n], r.mem[off:off+n]) {
				t.Errorf("string differs from memory")
			}
		})
	}
}

// TestReadPathMatchesKernel reads each string case both with ReadPath and
// with the kernel's getname (faccessat, which has no side effects): the
// errnos must agree, and where ReadPath succeeds the kernel must have got as
// far as looking the path up (ENOENT, see pathPattern, or the empty path).
func TestReadPathMatchesKernel(t *testing.T) {
	for _, c := range stringCases {
		if c.limit != 0 {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			_, addr := c.place(t)
			var buf [PathMax]byte
			_, err := ReadPath(self, addr, buf[:])
			_, _, kerr := unix.Syscall6(unix.SYS_FACCESSAT, atFdcwd, uintptr(addr), unix.F_OK, 0, 0, 0)
			want := errnoOf(err)
			if err == nil {
				want = unix.ENOENT
			}
			if kerr != want {
				t.Fatalf("kernel: %v, ReadPath: %v (want kernel %v)", kerr, err, want)
			}
		})
	}
}

func TestReadPathNeedsPathMaxBuffer(t *testing.T) {
	r := mapRegion(t, "R")
	if _, err := ReadPath(self, r.put(0, []byte("x\x00")), make([]byte, PathMax-1)); err != ErrBufferTooSmall {
		t.Fatalf("err = %v, want ErrBufferTooSmall", err)
	}
	if _, err := ReadString(self, r.addr(0), nil); err != ErrBufferTooSmall {
		t.Fatalf("empty buffer: err = %v, want ErrBufferTooSmall", err)
	}
}

func TestReadStringOddAddresses(t *testing.T) {
	var buf [PathMax]byte
	for _, addr := range []uint64{
		1,                      // page 0
		0x00007ffffffff000,     // last user page, normally unmapped
		0x0000800000000000,     // non-canonical
		0xffff800000000000,     // kernel
		^uint64(0) - 10,        // would wrap past 2^64
		^uint64(0) &^ 0xfff,    // last page
		0xffffffffff600000,     // vsyscall page
		0xffffffffff600000 + 1, // ... at an odd offset
	} {
		if n, err := ReadPath(self, addr, buf[:]); err != ErrFault {
			t.Errorf("ReadPath(%#x) = %d, %v; want ErrFault", addr, n, err)
		}
		_, _, kerr := unix.Syscall6(unix.SYS_FACCESSAT, atFdcwd, uintptr(addr), unix.F_OK, 0, 0, 0)
		if kerr != unix.EFAULT {
			t.Errorf("kernel getname(%#x): %v, want EFAULT", addr, kerr)
		}
	}
}

func TestReadXattrName(t *testing.T) {
	cases := []struct {
		name   string
		layout string
		off    int
		nul    int
		null   bool
		want   int
		err    error
	}{
		{name: "short", layout: "RG", nul: 8, want: 8},
		{name: "empty", layout: "RG", nul: 0, err: ErrRange},
		{name: "XATTR_NAME_MAX bytes", layout: "RG", nul: XattrNameMax, want: XattrNameMax},
		{name: "XATTR_NAME_MAX+1 bytes", layout: "RG", nul: XattrNameMax + 1, err: ErrRange},
		{name: "XATTR_NAME_MAX+1 bytes up to a guard page", layout: "RG", off: PageSize - XattrNameMax - 1, nul: -1, err: ErrRange},
		{name: "XATTR_NAME_MAX bytes and NUL up to a guard page", layout: "RG", off: PageSize - XattrNameMax - 1, nul: XattrNameMax, want: XattrNameMax},
		{name: "runs into a guard page", layout: "RG", off: PageSize - 100, nul: -1, err: ErrFault},
		{name: "runs into an unmapped page", layout: "RU", off: PageSize - 100, nul: -1, err: ErrFault},
		{name: "across pages", layout: "RRG", off: PageSize - 10, nul: 100, want: 100},
		{name: "NULL", layout: "R", null: true, err: ErrFault},
	}
	root := append([]byte("/"), 0)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := mapRegion(t, c.layout)
			r.fill(c.off, "user.x")
			if c.nul >= 0 {
				r.set(c.off+c.nul, 0)
			}
			addr := r.addr(c.off)
			if c.null {
				addr = 0
			}
			var buf [XattrNameMax + 1]byte
			n, err := ReadXattrName(self, addr, buf[:])
			if err != c.err || n != c.want {
				t.Fatalf("ReadXattrName = %d, %v; want %d, %v", n, err, c.want, c.err)
			}
			// The kernel imports the name (import_xattr_name) before it
			// looks at the path or the value: a name it accepts gives
			// ENODATA or EOPNOTSUPP on "/", never ERANGE or EFAULT.
			_, kerr := getxattr(root, addr)
			switch {
			case err != nil && kerr != Errno(err):
				t.Errorf("kernel: %v, ReadXattrName: %v", kerr, err)
			case err == nil && (kerr == unix.ERANGE || kerr == unix.EFAULT):
				t.Errorf("kernel refused the name (%v), ReadXattrName accepted it", kerr)
			}
		})
	}
	var small [XattrNameMax]byte
	if _, err := ReadXattrName(self, 1, small[:]); err != ErrBufferTooSmall {
		t.Errorf("short buffer: %v, want ErrBufferTooSmall", err)
	}
}

func getxattr(path []byte, name uint64) (int, unix.Errno) {
	r, _, e := unix.Syscall6(unix.SYS_GETXATTR, addrOf(path), uintptr(name), 0, 0, 0, 0)
	runtime.KeepAlive(path)
	return int(r), e
}

func TestReadBytes(t *testing.T) {
	r := mapRegion(t, "RG")
	r.fill(0, "0123456789")
	var buf [64]byte
	cases := []struct {
		name string
		addr uint64
		n    int
		buf  []byte
		want int
		err  error
	}{
		{"whole", r.addr(0), 64, buf[:], 64, nil},
		{"up to the guard page", r.addr(PageSize - 64), 64, buf[:], 64, nil},
		{"one byte into the guard page", r.addr(PageSize - 63), 64, buf[:], 0, ErrFault},
		{"in the guard page", r.addr(PageSize), 1, buf[:], 0, ErrFault},
		{"zero bytes from NULL", 0, 0, buf[:], 0, nil},
		{"zero bytes from a guard page", r.addr(PageSize), 0, buf[:], 0, nil},
		{"NULL", 0, 1, buf[:], 0, ErrFault},
		{"negative", r.addr(0), -1, buf[:], 0, ErrInvalid},
		{"buffer too small", r.addr(0), 65, buf[:], 0, ErrBufferTooSmall},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := ReadBytes(self, c.addr, c.n, c.buf)
			if n != c.want || err != c.err {
				t.Fatalf("ReadBytes = %d, %v; want %d, %v", n, err, c.want, c.err)
			}
			if err == nil && n > 0 && !bytes.Equal(buf[:n], r.mem[c.addr-r.base:][:n]) {
				t.Errorf("bytes differ from memory")
			}
		})
	}
}

func TestReadXattrValue(t *testing.T) {
	r := mapRegion(t, strings.Repeat("R", XattrSizeMax/PageSize)+"G")
	r.fill(0, "v")
	buf := make([]byte, XattrSizeMax)
	cases := []struct {
		name string
		addr uint64
		size uint64
		want int
		err  error
	}{
		{"XATTR_SIZE_MAX", r.addr(0), XattrSizeMax, XattrSizeMax, nil},
		{"XATTR_SIZE_MAX+1", r.addr(0), XattrSizeMax + 1, 0, ErrTooBig},
		{"huge size_t", r.addr(0), 1 << 63, 0, ErrTooBig},
		{"zero size ignores the pointer", 0, 0, 0, nil},
		{"runs into the guard page", r.addr(PageSize), XattrSizeMax, 0, ErrFault},
		{"NULL", 0, 1, 0, ErrFault},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := ReadXattrValue(self, c.addr, c.size, buf)
			if n != c.want || err != c.err {
				t.Fatalf("ReadXattrValue = %d, %v; want %d, %v", n, err, c.want, c.err)
			}
		})
	}
}

// TestSetxattrOrderMatchesKernel checks the order documented in doc.go: the
// kernel checks the name, then the value size, then copies the value, all
// before the path (here "", which would give ENOENT, so nothing is ever set).
func TestSetxattrOrderMatchesKernel(t *testing.T) {
	r := mapRegion(t, "RG")
	name := r.put(0, []byte("user.vigil\x00"))
	empty := r.put(100, []byte{0})
	value := r.addr(200)
	cases := []struct {
		name        string
		nameAddr    uint64
		value, size uint64
	}{
		{"all valid", name, value, 10},
		{"empty name", empty, value, 10},
		{"unreadable name", r.addr(PageSize), value, 10},
		{"size too big, name fine", name, value, XattrSizeMax + 1},
		{"size too big, name empty", empty, value, XattrSizeMax + 1},
		{"value unreadable", name, r.addr(PageSize - 5), 10},
		{"value NULL size 0", name, 0, 0},
	}
	buf := new(Scratch)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadXattrName(self, c.nameAddr, buf.XattrName[:])
			if err == nil {
				_, err = ReadXattrValue(self, c.value, c.size, buf.XattrValue[:])
			}
			want := unix.ENOENT // the empty path, reached only after name and value
			if err != nil {
				want = Errno(err)
			}
			_, _, kerr := unix.Syscall6(unix.SYS_SETXATTR, uintptr(r.addr(100)), uintptr(c.nameAddr), uintptr(c.value), uintptr(c.size), 0, 0)
			if kerr != want {
				t.Fatalf("kernel: %v, args: %v (want %v)", kerr, err, want)
			}
		})
	}
}

func TestReadSockaddrLengths(t *testing.T) {
	r := mapRegion(t, "RG")
	r.fill(0, "\x02\x00")
	var buf [SockaddrStorageSize]byte
	cases := []struct {
		name    string
		addr    uint64
		addrlen uint64
		want    int
		err     error
	}{
		{"16", r.addr(0), 16, 16, nil},
		{"sockaddr_storage", r.addr(0), 128, 128, nil},
		{"above sockaddr_storage", r.addr(0), 129, 0, ErrInvalid},
		{"negative int", r.addr(0), 0x80000000, 0, ErrInvalid},
		{"upper 32 bits ignored", r.addr(0), 1<<32 | 16, 16, nil},
		{"zero reads nothing", 0, 0, 0, nil},
		{"NULL", 0, 16, 0, ErrFault},
		{"runs into the guard page", r.addr(PageSize - 8), 16, 0, ErrFault},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := ReadSockaddr(self, c.addr, c.addrlen, buf[:])
			if n != c.want || err != c.err {
				t.Fatalf("ReadSockaddr = %d, %v; want %d, %v", n, err, c.want, c.err)
			}
		})
	}
}

func TestReadTaskGone(t *testing.T) {
	var buf [PathMax]byte
	// PID_MAX_LIMIT is 4M, so no task has this id.
	const noTask = 1 << 30
	_, err := ReadPath(noTask, 0x10000, buf[:])
	if err != ErrTaskGone || Errno(err) != unix.ESRCH || !errors.Is(err, unix.ESRCH) {
		t.Fatalf("err = %v (errno %v), want ErrTaskGone/ESRCH", err, Errno(err))
	}
	if _, err := ReadStruct(noTask, 0x10000, 24, 24, buf[:]); err != ErrTaskGone {
		t.Fatalf("ReadStruct: %v, want ErrTaskGone", err)
	}
}

func TestReadWithoutPtraceAccessFailsClosed(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may read any process; needs an unprivileged user to get EPERM from process_vm_readv")
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/1", &st); err != nil || int(st.Uid) == os.Geteuid() {
		t.Skip("needs pid 1 to belong to another user")
	}
	var buf [PathMax]byte
	_, err := ReadPath(1, 0x10000, buf[:])
	if !errors.Is(err, unix.EPERM) || Errno(err) != unix.EFAULT {
		t.Fatalf("err = %v (errno %v), want EPERM mapped to EFAULT", err, Errno(err))
	}
}

func TestErrno(t *testing.T) {
	cases := []struct {
		err  error
		want unix.Errno
	}{
		{nil, 0},
		{ErrFault, unix.EFAULT},
		{ErrNameTooLong, unix.ENAMETOOLONG},
		{ErrTooBig, unix.E2BIG},
		{ErrInvalid, unix.EINVAL},
		{ErrRange, unix.ERANGE},
		{ErrPerm, unix.EPERM},
		{ErrTaskGone, unix.ESRCH},
		{fmt.Errorf("reading path of openat: %w", ErrNameTooLong), unix.ENAMETOOLONG},
		{readError{unix.EPERM}, unix.EFAULT},
		{fmt.Errorf("x: %w", readError{unix.ENOMEM}), unix.EFAULT},
		{unix.ESRCH, unix.ESRCH},
		{unix.EPERM, unix.EFAULT},
		{ErrBufferTooSmall, unix.EFAULT},
		{errors.New("something else"), unix.EFAULT},
	}
	for _, c := range cases {
		if got := Errno(c.err); got != c.want {
			t.Errorf("Errno(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	for _, e := range []*Error{ErrFault, ErrNameTooLong, ErrTooBig, ErrInvalid, ErrRange, ErrPerm, ErrTaskGone} {
		wrapped := fmt.Errorf("ctx: %w", e)
		if !errors.Is(wrapped, e) || !errors.Is(wrapped, e.Errno()) {
			t.Errorf("%v: errors.Is does not match the sentinel and %v", e, e.Errno())
		}
	}
	if errors.Is(ErrFault, unix.ENAMETOOLONG) {
		t.Errorf("ErrFault matches ENAMETOOLONG")
	}
	if !errors.Is(readError{unix.EPERM}, unix.EPERM) {
		t.Errorf("readError does not unwrap to its errno")
	}
}

func TestPageSize(t *testing.T) {
	if os.Getpagesize() != PageSize {
		t.Fatalf("page size %d, args assumes %d", os.Getpagesize(), PageSize)
	}
}
