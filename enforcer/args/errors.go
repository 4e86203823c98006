package args

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Error is an argument that the kernel itself would refuse, together with the
// errno the kernel returns for it. The package's sentinels are *Error values;
// errors.Is matches both the sentinel and its unix.Errno (through Unwrap), so
// callers can write errors.Is(err, ErrFault) or errors.Is(err, unix.EFAULT).
type Error struct {
	errno unix.Errno
	msg   string
}

// Error returns the message.
func (e *Error) Error() string { return e.msg }

// Unwrap returns the errno, so errors.Is(err, unix.EFAULT) holds for ErrFault.
func (e *Error) Unwrap() error { return e.errno }

// Errno returns the errno the kernel returns for this condition.
func (e *Error) Errno() unix.Errno { return e.errno }

// Sentinel errors, one per errno the kernel's copy routines return. They are
// pointers to package variables, so returning one never allocates.
var (
	// ErrFault: unreadable memory before the copy routine was done with it
	// (copy_from_user and strncpy_from_user return -EFAULT), or a NULL pointer.
	ErrFault = &Error{unix.EFAULT, "args: watchee memory unreadable (EFAULT)"}
	// ErrNameTooLong: no NUL within PATH_MAX bytes of a path (getname_flags).
	ErrNameTooLong = &Error{unix.ENAMETOOLONG, "args: no NUL within the string limit (ENAMETOOLONG)"}
	// ErrTooBig: a struct size above PAGE_SIZE, a non-zero byte beyond the
	// struct size the kernel knows (copy_struct_from_user), or an xattr value
	// above XATTR_SIZE_MAX (setxattr_copy).
	ErrTooBig = &Error{unix.E2BIG, "args: argument too big or unknown non-zero struct tail (E2BIG)"}
	// ErrInvalid: a length or field the kernel rejects with EINVAL (a struct
	// smaller than its first published version, a sockaddr length out of
	// range, an invalid clone_args field, an unknown mknod file type).
	ErrInvalid = &Error{unix.EINVAL, "args: invalid argument (EINVAL)"}
	// ErrRange: an empty xattr name or one without a NUL in XATTR_NAME_MAX+1
	// bytes (import_xattr_name).
	ErrRange = &Error{unix.ERANGE, "args: xattr name empty or too long (ERANGE)"}
	// ErrPerm: mknod of a directory (may_mknod).
	ErrPerm = &Error{unix.EPERM, "args: operation not permitted (EPERM)"}
	// ErrTaskGone: the thread no longer exists (process_vm_readv gives ESRCH,
	// also for a zombie whose mm is gone). The notification is then no longer
	// valid either, so there is no one to answer.
	ErrTaskGone = &Error{unix.ESRCH, "args: watchee thread gone (ESRCH)"}
)

// ErrBufferTooSmall reports a caller's buffer that is too small for the limit
// the kernel applies (for example a path buffer shorter than PathMax): a bug in
// the supervisor, not in the watchee's arguments. Errno maps it to EFAULT, so
// it still fails closed.
var ErrBufferTooSmall = errors.New("args: buffer smaller than the kernel's limit")

// readError is a process_vm_readv failure other than EFAULT or ESRCH, most
// often EPERM when the supervisor lost ptrace access (the watchee exec'd a
// setuid binary and became non-dumpable). It is the supervisor's problem, not
// the watchee's, so Errno fails closed with EFAULT, but the message and
// errors.Is keep the real cause for the log. A value type of one word: boxing
// it into an error does not allocate for errno values below 256.
type readError struct{ errno unix.Errno }

func (e readError) Error() string { return "args: process_vm_readv: " + e.errno.Error() }
func (e readError) Unwrap() error { return e.errno }

// FromArgs reports whether err (or an error it wraps) came from this
// package, so that Errno is the errno to answer for it.
func FromArgs(err error) bool {
	var ae *Error
	var re readError
	return errors.As(err, &ae) || errors.As(err, &re) || errors.Is(err, ErrBufferTooSmall)
}

// Errno returns the errno to answer the watchee with for an error returned by
// this package: the kernel's errno for the condition (see the sentinels),
// ESRCH when the task is gone, and EFAULT for everything else, so that an
// unexpected failure to read arguments fails closed instead of granting. It
// returns 0 for a nil error.
func Errno(err error) unix.Errno {
	if err == nil {
		return 0
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch v := e.(type) {
		case *Error:
			return v.errno
		case readError:
			return unix.EFAULT
		case unix.Errno:
			if v == unix.ESRCH {
				return unix.ESRCH
			}
			return unix.EFAULT
		}
	}
	return unix.EFAULT
}

// mapReadErr turns a process_vm_readv error into the package's errors.
func mapReadErr(err error) error {
	errno, ok := err.(unix.Errno)
	if !ok {
		return err
	}
	switch errno {
	case unix.EFAULT:
		return ErrFault
	case unix.ESRCH:
		return ErrTaskGone
	}
	return readError{errno}
}
