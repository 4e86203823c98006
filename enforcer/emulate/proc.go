package emulate

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// nsID identifies a namespace by its nsfs inode.
type nsID struct{ Dev, Ino uint64 }

// statNS identifies the namespace behind /proc/<...>/ns/<type>.
func statNS(procfd int, p string) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(procfd, p, &st, 0); err != nil {
		return nsID{}, err
	}
	return nsID{Dev: st.Dev, Ino: st.Ino}, nil
}

// tidPath renders "<tid>/<name>" relative to /proc.
func tidPath(tid int, name string) string {
	return strconv.Itoa(tid) + "/" + name
}

// readProcRecord reads a /proc/<tid> file the kernel generates as one
// record (status, stat, limits: single_open seq files) into buf. Such a file
// comes whole from the first read that has room for it, so a read that
// leaves room is the end: one read instead of two on the emulation path.
func readProcRecord(dirfd int, p string, buf []byte) ([]byte, error) {
	fd, err := unix.Openat(dirfd, p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == len(buf) {
			return nil, fmt.Errorf("%s exceeds %d bytes", p, len(buf)-1)
		}
		return buf[:n], nil
	}
}

// readProcFile reads a small /proc file into buf.
func readProcFile(procfd int, p string, buf []byte) ([]byte, error) {
	fd, err := unix.Openat(procfd, p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			return buf[:n], nil
		}
		n += m
	}
	return nil, fmt.Errorf("%s exceeds %d bytes", p, len(buf))
}

// fdSlotFree reports whether the watchee's open would find a free descriptor
// slot, i.e. whether some fd below its RLIMIT_NOFILE is unused. The kernel
// allocates the slot (get_unused_fd_flags) right after copying the path and
// before any lookup, so EMFILE must be decided before the emulation touches
// the filesystem: ADDFD would fail with EMFILE too, but only after an O_CREAT
// or O_TRUNC had taken effect.
//
// Since Linux 6.2 st_size of /proc/<tid>/fd is the number of open fds, which
// settles the common case with one stat: fewer open fds than the limit leaves
// a slot. Otherwise the directory is read to see whether all of 0..limit-1
// are taken (fds above a lowered limit do not count).
func fdSlotFree(procfd, tidfd, pid int) (bool, error) {
	lim, err := rlimit(procfd, pid, unix.RLIMIT_NOFILE)
	if err != nil {
		return false, err
	}
	if lim.Cur == 0 {
		return false, nil
	}
	var st unix.Stat_t
	if err := unix.Fstatat(tidfd, "fd", &st, 0); err != nil {
		return false, unix.ESRCH
	}
	if st.Size > 0 && uint64(st.Size) < lim.Cur {
		return true, nil
	}
	dfd, err := unix.Openat(tidfd, "fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, unix.ESRCH
	}
	defer unix.Close(dfd)
	var below uint64
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(dfd, buf)
		if err != nil {
			return false, fmt.Errorf("reading the watchee's fd directory: %w", err)
		}
		if n == 0 {
			break
		}
		var names []string
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
		for _, s := range names {
			if v, err := strconv.ParseUint(s, 10, 64); err == nil && v < lim.Cur {
				below++
			}
		}
	}
	return below < lim.Cur, nil
}

// rlimit reads one resource limit of process pid: prlimit(2) when allowed
// (vigil owns the watchee's user namespace, or shares its ids), else
// /proc/<pid>/limits, which anyone may read but costs several times more —
// prlimit on another user's process needs CAP_SYS_RESOURCE, which vigil may
// run without.
func rlimit(procfd, pid, resource int) (unix.Rlimit, error) {
	var lim unix.Rlimit
	err := unix.Prlimit(pid, resource, nil, &lim)
	if err == nil {
		return lim, nil
	}
	if err != unix.EPERM {
		return lim, unix.ESRCH
	}
	return readLimit(procfd, pid, limitNames[resource])
}

var limitNames = map[int]string{unix.RLIMIT_NOFILE: "Max open files", unix.RLIMIT_FSIZE: "Max file size"}

// readLimit reads one resource limit of process pid from /proc/<pid>/limits.
// name is the line's label ("Max open files"); "unlimited" is RLIM_INFINITY.
func readLimit(procfd, pid int, name string) (unix.Rlimit, error) {
	var buf [4096]byte
	b, err := readProcFile(procfd, tidPath(pid, "limits"), buf[:])
	if err != nil {
		return unix.Rlimit{}, unix.ESRCH
	}
	return parseLimit(b, name)
}

func parseLimit(b []byte, name string) (unix.Rlimit, error) {
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		rest, ok := bytes.CutPrefix(line, []byte(name))
		if !ok || len(rest) == 0 || rest[0] != ' ' {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) < 2 {
			break
		}
		var v [2]uint64
		for i := range v {
			if f[i] == "unlimited" {
				v[i] = unix.RLIM_INFINITY
				continue
			}
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return unix.Rlimit{}, fmt.Errorf("parsing %q limit: %w", name, err)
			}
			v[i] = n
		}
		return unix.Rlimit{Cur: v[0], Max: v[1]}, nil
	}
	return unix.Rlimit{}, fmt.Errorf("no %q line in limits", name)
}
