package args

import (
	"bytes"

	"golang.org/x/sys/unix"
)

// Kernel limits the readers apply. vigil supports x86_64 only (see
// enforcer/sysinfo), where PAGE_SIZE is 4096; keep in sync with the kernel
// headers named on each constant.
const (
	// PageSize is PAGE_SIZE on x86_64: the upper bound openat2 and clone3
	// put on an extensible struct's size, and the granularity at which
	// memory becomes unreadable.
	PageSize = 4096
	// PathMax is PATH_MAX (include/uapi/linux/limits.h), counting the NUL:
	// getname_flags gives ENAMETOOLONG when no NUL is in the first PathMax
	// bytes, so the longest path is PathMax-1 bytes.
	PathMax = 4096
	// XattrNameMax is XATTR_NAME_MAX (include/uapi/linux/limits.h); the
	// kernel's name buffer holds XattrNameMax+1 bytes including the NUL.
	XattrNameMax = 255
	// XattrSizeMax is XATTR_SIZE_MAX: the largest xattr value setxattr takes.
	XattrSizeMax = 65536
	// SockaddrStorageSize is sizeof(struct sockaddr_storage), the largest
	// address move_addr_to_kernel copies.
	SockaddrStorageSize = 128
)

// Scratch holds the buffers one notify loop needs to read any argument of any
// syscall in the catalog without allocating. Allocate one per loop (it is
// about 76 KiB, so with new or as a field of a heap object) and reuse it for
// every notification; a Scratch is not safe for concurrent use. Everything
// read into it is overwritten by the next read, so copy what must outlive the
// notification (for the audit record, say).
type Scratch struct {
	// Path and Path2 hold the two path arguments of rename, link and
	// symlink (PathMax each, as getname_flags).
	Path  [PathMax]byte
	Path2 [PathMax]byte
	// XattrName holds an xattr name (import_xattr_name's buffer).
	XattrName [XattrNameMax + 1]byte
	// XattrValue holds an xattr value (vmemdup_user in setxattr_copy).
	XattrValue [XattrSizeMax]byte
	// Sockaddr holds a socket address (move_addr_to_kernel's
	// sockaddr_storage).
	Sockaddr [SockaddrStorageSize]byte
	// Struct holds an extensible struct (open_how, clone_args). It is a
	// whole page because ReadStruct also uses it to check a struct's tail,
	// which may be up to PAGE_SIZE bytes, in one read per page.
	Struct [PageSize]byte
}

// readOnce reads len(dst) bytes at addr with one process_vm_readv. The kernel
// copies page by page and returns a short count when a later page is
// unreadable, and EFAULT only when nothing at all could be read.
func readOnce(tid int, addr uint64, dst []byte) (int, error) {
	local := [1]unix.Iovec{{Base: &dst[0]}}
	local[0].SetLen(len(dst))
	remote := [1]unix.RemoteIovec{{Base: uintptr(addr), Len: len(dst)}}
	n, err := processVMReadv(tid, &local[0], &remote[0])
	if err != nil {
		return 0, mapReadErr(err)
	}
	return n, nil
}

// toPageEnd returns how many bytes remain from addr to the end of its page.
func toPageEnd(addr uint64) int {
	return PageSize - int(addr&(PageSize-1))
}

// ReadString reads the NUL-terminated string at addr into buf with the
// semantics of the kernel's strncpy_from_user(buf, addr, len(buf)) as used by
// getname_flags: the NUL must be among the first len(buf) bytes, so the
// longest string is len(buf)-1 bytes. It returns the string's length n
// (without the NUL; buf[:n] is the string and buf[n] is 0).
//
//   - no NUL in the first len(buf) bytes: ErrNameTooLong, even when the memory
//     right after them is unreadable, because the kernel stops reading there;
//   - a fault before the NUL: ErrFault (a partly readable page is used up to
//     the fault, like the kernel's byte-at-a-time fallback);
//   - addr 0: ErrFault without a read. The kernel would read page 0 if the
//     watchee had managed to map it (vm.mmap_min_addr=0 and CAP_SYS_RAWIO);
//     refusing with EFAULT is the fail-closed answer. Callers handling a NULL
//     path with AT_EMPTY_PATH (getname_maybe_null) check addr themselves;
//   - an empty string: 0 and no error; the caller decides (getname gives
//     ENOENT unless LOOKUP_EMPTY).
//
// The first read goes to the end of addr's page (capped at len(buf)), which
// holds the whole string in the common case: one syscall. Only when no NUL was
// found does it read on, one page per syscall, so it never touches a page past
// the string's NUL.
func ReadString(tid int, addr uint64, buf []byte) (int, error) {
	limit := len(buf)
	if limit == 0 {
		return 0, ErrBufferTooSmall
	}
	if addr == 0 {
		return 0, ErrFault
	}
	off := 0
	for off < limit {
		a := addr + uint64(off)
		chunk := min(toPageEnd(a), limit-off)
		n, err := readOnce(tid, a, buf[off:off+chunk])
		if i := bytes.IndexByte(buf[off:off+n], 0); i >= 0 {
			return off + i, nil
		}
		if err != nil {
			return 0, err
		}
		if n < chunk {
			// Within one page the kernel copies all or nothing, so a
			// short count is a fault at a+n.
			return 0, ErrFault
		}
		off += n
	}
	return 0, ErrNameTooLong
}

// ReadPath reads a path argument like getname_flags: ReadString limited to
// PathMax bytes including the NUL. buf must hold at least PathMax bytes
// (Scratch.Path); only buf[:PathMax] is used. An empty path returns 0 and no
// error: the kernel's answer to it (ENOENT, or the dirfd itself with
// AT_EMPTY_PATH) depends on the syscall's flags.
func ReadPath(tid int, addr uint64, buf []byte) (int, error) {
	if len(buf) < PathMax {
		return 0, ErrBufferTooSmall
	}
	return ReadString(tid, addr, buf[:PathMax])
}

// ReadXattrName reads an xattr name like import_xattr_name (fs/xattr.c):
// strncpy_from_user into a XATTR_NAME_MAX+1 byte buffer, where both an empty
// name and one without a NUL in those bytes are ErrRange, and a fault is
// ErrFault. buf must hold at least XattrNameMax+1 bytes (Scratch.XattrName).
// It returns the name's length; buf[:n] is the name.
func ReadXattrName(tid int, addr uint64, buf []byte) (int, error) {
	if len(buf) < XattrNameMax+1 {
		return 0, ErrBufferTooSmall
	}
	n, err := ReadString(tid, addr, buf[:XattrNameMax+1])
	switch {
	case err == ErrNameTooLong:
		return 0, ErrRange
	case err != nil:
		return 0, err
	case n == 0:
		return 0, ErrRange
	}
	return n, nil
}

// ReadBytes reads exactly n bytes at addr into buf[:n], like copy_from_user:
// any unreadable byte makes the whole read ErrFault. n == 0 reads nothing and
// succeeds, whatever addr is (copy_from_user of zero bytes never faults). A
// negative n is ErrInvalid; n > len(buf) is ErrBufferTooSmall.
func ReadBytes(tid int, addr uint64, n int, buf []byte) (int, error) {
	switch {
	case n < 0:
		return 0, ErrInvalid
	case n == 0:
		return 0, nil
	case n > len(buf):
		return 0, ErrBufferTooSmall
	case addr == 0:
		return 0, ErrFault
	}
	got, err := readOnce(tid, addr, buf[:n])
	if err != nil {
		return 0, err
	}
	if got < n {
		return 0, ErrFault
	}
	return n, nil
}

// ReadSockaddr reads the socket address of connect or bind like
// move_addr_to_kernel (net/socket.c). addrlen is the raw register: the
// syscalls declare it int, so only its low 32 bits count and a value with bit
// 31 set is negative. A negative length or one above SockaddrStorageSize is
// ErrInvalid, 0 reads nothing, an unreadable address is ErrFault. buf must
// hold the length (Scratch.Sockaddr holds any valid one). Pass buf[:n] to
// DecodeSockaddr.
func ReadSockaddr(tid int, addr, addrlen uint64, buf []byte) (int, error) {
	n := int(int32(addrlen))
	if n < 0 || n > SockaddrStorageSize {
		return 0, ErrInvalid
	}
	return ReadBytes(tid, addr, n, buf)
}

// ReadXattrValue reads the value argument of setxattr like setxattr_copy
// (fs/xattr.c): size is the size_t register; 0 reads nothing (the value
// pointer is ignored), more than XattrSizeMax is ErrTooBig, an unreadable
// value is ErrFault. buf must hold size bytes (Scratch.XattrValue holds any
// valid one).
func ReadXattrValue(tid int, addr, size uint64, buf []byte) (int, error) {
	if size > XattrSizeMax {
		return 0, ErrTooBig
	}
	return ReadBytes(tid, addr, int(size), buf)
}

// ReadStruct reads an extensible struct like copy_struct_from_user
// (include/linux/uaccess.h), where the watchee passes a pointer and its own
// idea of the struct's size, usize, and the kernel knows the first known
// bytes:
//
//   - usize > PageSize: ErrTooBig (both openat2 and clone3 check this before
//     copying; their lower bound, which differs, is checked by ReadOpenHow and
//     ReadCloneArgs);
//   - usize > known: the bytes beyond known must all be zero, else ErrTooBig.
//     This is checked first, before the known part is read, exactly as the
//     kernel does: an unreadable tail is ErrFault, and a non-zero byte is
//     ErrTooBig even when the known part is unreadable. The tail is read a
//     page at a time and the check stops at the first non-zero byte, like
//     check_zeroed_user;
//   - then min(usize, known) bytes are copied, any fault being ErrFault;
//   - usize < known: the missing bytes are zeroed, which is what makes older,
//     shorter versions of the struct valid.
//
// On success buf[:known] holds the struct and the result is the number of
// bytes that came from the watchee, min(usize, known). known must be positive
// and at most len(buf). buf also serves as scratch space for the tail check,
// so a PageSize buffer (Scratch.Struct) does it in one read per page; a
// smaller one just takes more reads.
func ReadStruct(tid int, addr, usize uint64, known int, buf []byte) (int, error) {
	if known <= 0 || known > len(buf) {
		return 0, ErrBufferTooSmall
	}
	if usize > PageSize {
		return 0, ErrTooBig
	}
	if usize > 0 && addr == 0 {
		return 0, ErrFault
	}
	size := min(int(usize), known)
	if int(usize) > known {
		if err := checkZeroed(tid, addr+uint64(known), int(usize)-known, buf); err != nil {
			return 0, err
		}
	}
	if size > 0 {
		if _, err := ReadBytes(tid, addr, size, buf); err != nil {
			return 0, err
		}
	}
	clear(buf[size:known])
	return size, nil
}

// checkZeroed mirrors check_zeroed_user (lib/usercopy.c): ErrTooBig at the
// first non-zero byte, ErrFault when a byte before it is unreadable, nil when
// all n bytes at addr are zero. It reads page by page into buf so that it
// never touches a page after the first non-zero byte.
func checkZeroed(tid int, addr uint64, n int, buf []byte) error {
	for n > 0 {
		chunk := min(toPageEnd(addr), n, len(buf))
		got, err := readOnce(tid, addr, buf[:chunk])
		if !allZero(buf[:got]) {
			return ErrTooBig
		}
		if err != nil {
			return err
		}
		if got < chunk {
			return ErrFault
		}
		addr += uint64(got)
		n -= got
	}
	return nil
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ReadOpenHow reads openat2's struct open_how in the kernel's order (fs/open.c,
// SYSCALL_DEFINE4(openat2)): usize < OpenHowSizeVer0 is ErrInvalid, usize >
// PageSize ErrTooBig, then copy_struct_from_user (see ReadStruct). The kernel
// does all of this before it reads the path, so read the path after this.
// buf is scratch space of at least OpenHowSizeVer0 bytes (Scratch.Struct).
func ReadOpenHow(tid int, addr, usize uint64, buf []byte) (OpenHow, error) {
	if usize < OpenHowSizeVer0 {
		return OpenHow{}, ErrInvalid
	}
	n, err := ReadStruct(tid, addr, usize, OpenHowSizeLatest, buf)
	if err != nil {
		return OpenHow{}, err
	}
	return DecodeOpenHow(buf[:n])
}

// ReadCloneArgs reads clone3's struct clone_args in the kernel's order
// (copy_clone_args_from_user, kernel/fork.c): usize > PageSize is ErrTooBig,
// usize < CloneArgsSizeVer0 ErrInvalid, then copy_struct_from_user (see
// ReadStruct), then DecodeCloneArgs' checks of the fields. buf is scratch
// space of at least CloneArgsSizeLatest bytes (Scratch.Struct).
func ReadCloneArgs(tid int, addr, usize uint64, buf []byte) (CloneArgs, error) {
	if usize > PageSize {
		return CloneArgs{}, ErrTooBig
	}
	if usize < CloneArgsSizeVer0 {
		return CloneArgs{}, ErrInvalid
	}
	n, err := ReadStruct(tid, addr, usize, CloneArgsSizeLatest, buf)
	if err != nil {
		return CloneArgs{}, err
	}
	return DecodeCloneArgs(buf[:n])
}
