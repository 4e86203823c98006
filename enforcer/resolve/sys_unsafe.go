package resolve

import (
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openat2 is unix.Openat2 without allocating the path's C copy: the path is
// copied into the resolver's buffer (a Resolver serves one receiver at a
// time). The notify loop resolves a path per trapped call.
func (r *Resolver) openat2(dirfd int, path string, how *unix.OpenHow) (int, error) {
	if strings.IndexByte(path, 0) >= 0 {
		return -1, unix.EINVAL
	}
	r.cpath = append(append(r.cpath[:0], path...), 0)
	fd, _, e := unix.Syscall6(unix.SYS_OPENAT2, uintptr(dirfd), uintptr(unsafe.Pointer(&r.cpath[0])),
		uintptr(unsafe.Pointer(how)), unsafe.Sizeof(*how), 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// emptyPath is the "" statxFd passes with AT_EMPTY_PATH.
var emptyPath = [1]byte{}

// statxFd is unix.Statx(fd, "", AT_EMPTY_PATH|flags, mask, stx) without
// allocating the empty path.
func statxFd(fd, flags int, mask int, stx *unix.Statx_t) error {
	_, _, e := unix.Syscall6(unix.SYS_STATX, uintptr(fd), uintptr(unsafe.Pointer(&emptyPath[0])),
		uintptr(unix.AT_EMPTY_PATH|flags), uintptr(mask), uintptr(unsafe.Pointer(stx)), 0)
	if e != 0 {
		return e
	}
	return nil
}
