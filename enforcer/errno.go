package enforcer

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/args"
	"github.com/vigilsec/vigil/enforcer/emulate"
)

// errnoFor is the errno the watchee gets for a failure on the way to a
// decision, wherever it came from:
//
//   - EACCES when vigil refuses the object (no reference name for it,
//     vigil's own /proc entries: refused), as permissions would;
//   - the errno of a failed read of the watchee's memory as the kernel's copy
//     routine would give it (package args: EFAULT, ENAMETOOLONG, E2BIG...);
//   - the kernel's own errno when the error carries one (a lookup in the
//     watchee's view, a preparation by an emulation worker);
//   - EPERM otherwise: fail closed.
func errnoFor(err error) unix.Errno {
	switch {
	case err == nil:
		return 0
	case refused(err):
		return unix.EACCES
	case args.FromArgs(err):
		return args.Errno(err)
	}
	var e unix.Errno
	if errors.As(err, &e) && e != 0 {
		return e
	}
	return unix.EPERM
}

// kernelAnswer returns the errno a preparation or lookup failed with when it
// is the kernel's answer for the call itself (ENOENT, ENOTDIR, ELOOP,
// EACCES...), which an emulated call returns as its result; vigil's own
// failures (cannot emulate faithfully, the object kept changing) are not.
func kernelAnswer(err error) (unix.Errno, bool) {
	if errors.Is(err, emulate.ErrUnsupported) || errors.Is(err, emulate.ErrRaced) {
		return 0, false
	}
	var e unix.Errno
	if errors.As(err, &e) && e != 0 {
		return e, true
	}
	return 0, false
}
