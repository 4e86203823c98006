package policy

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// errnoByName maps E* names to numbers. It is built from x/sys's own table
// (unix.ErrnoName) so it always agrees with the errno values the rest of
// vigil answers with, plus the glibc aliases that share a number and that
// ErrnoName therefore never returns.
var errnoByName = func() map[string]unix.Errno {
	m := make(map[string]unix.Errno, 140)
	// Linux errnos stop below 134 (EHWPOISON); 4096 is the kernel's
	// MAX_ERRNO, so the scan cannot miss a future one that x/sys knows.
	for e := syscall.Errno(1); e < 4096; e++ {
		if name := unix.ErrnoName(e); name != "" {
			m[name] = e
		}
	}
	for _, alias := range []struct {
		name string
		e    unix.Errno
	}{
		{"EAGAIN", unix.EAGAIN}, {"EWOULDBLOCK", unix.EWOULDBLOCK},
		{"EDEADLK", unix.EDEADLK}, {"EDEADLOCK", unix.EDEADLOCK},
		{"EOPNOTSUPP", unix.EOPNOTSUPP}, {"ENOTSUP", unix.ENOTSUP},
	} {
		m[alias.name] = alias.e
	}
	return m
}()

// ErrnoByName returns the number of the errno named name (EPERM, ENOSYS, the
// glibc aliases too), and whether there is one.
func ErrnoByName(name string) (unix.Errno, bool) {
	e, ok := errnoByName[name]
	return e, ok
}
