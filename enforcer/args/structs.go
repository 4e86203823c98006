package args

import "encoding/binary"

// Published sizes of the extensible structs (include/uapi/linux/openat2.h and
// include/uapi/linux/sched.h). Linux 6.18 knows no later versions: probing it
// with a non-zero byte right after the latest size gives E2BIG. Keep in sync
// with the kernel when a new version is published.
const (
	// OpenHowSizeVer0 is OPEN_HOW_SIZE_VER0: flags, mode, resolve.
	OpenHowSizeVer0 = 24
	// OpenHowSizeLatest is OPEN_HOW_SIZE_LATEST.
	OpenHowSizeLatest = OpenHowSizeVer0
	// CloneArgsSizeVer0 is CLONE_ARGS_SIZE_VER0: flags through tls (5.3).
	CloneArgsSizeVer0 = 64
	// CloneArgsSizeVer1 is CLONE_ARGS_SIZE_VER1: adds set_tid, set_tid_size (5.5).
	CloneArgsSizeVer1 = 80
	// CloneArgsSizeVer2 is CLONE_ARGS_SIZE_VER2: adds cgroup (5.7).
	CloneArgsSizeVer2 = 88
	// CloneArgsSizeLatest is the largest clone_args the kernel knows.
	CloneArgsSizeLatest = CloneArgsSizeVer2
)

// The struct fields are __aligned_u64 in the watchee's (x86_64, little-endian)
// byte order.
var hostEndian = binary.LittleEndian

// OpenHow is openat2's struct open_how. Flags holds all 64 bits as the
// watchee passed them (build_open_flags, not this package, rejects the upper
// 32 with EINVAL).
type OpenHow struct {
	Flags   uint64 // O_* flags
	Mode    uint64 // creation mode
	Resolve uint64 // RESOLVE_* flags
}

// DecodeOpenHow decodes a struct open_how of len(b) bytes, len(b) being the
// size the watchee passed, with openat2's checks: fewer than OpenHowSizeVer0
// bytes is ErrInvalid, more than PageSize ErrTooBig, and a non-zero byte past
// OpenHowSizeLatest ErrTooBig (copy_struct_from_user). It never panics.
func DecodeOpenHow(b []byte) (OpenHow, error) {
	switch {
	case len(b) < OpenHowSizeVer0:
		return OpenHow{}, ErrInvalid
	case len(b) > PageSize:
		return OpenHow{}, ErrTooBig
	case !allZero(b[OpenHowSizeLatest:]):
		return OpenHow{}, ErrTooBig
	}
	return OpenHow{
		Flags:   hostEndian.Uint64(b[0:]),
		Mode:    hostEndian.Uint64(b[8:]),
		Resolve: hostEndian.Uint64(b[16:]),
	}, nil
}

// CloneArgs is clone3's struct clone_args. Fields that the watchee's version
// of the struct does not have are zero, as copy_struct_from_user leaves them.
type CloneArgs struct {
	Flags      uint64 // CLONE_* flags (CLONE_NEWTIME is 0x80 here, not part of a signal)
	Pidfd      uint64 // pointer: where to store the pidfd (CLONE_PIDFD)
	ChildTid   uint64 // pointer: child's TID in the child (CLONE_CHILD_SETTID/CLEARTID)
	ParentTid  uint64 // pointer: child's TID in the parent (CLONE_PARENT_SETTID)
	ExitSignal uint64 // signal to the parent when the child exits
	Stack      uint64 // lowest byte of the child's stack
	StackSize  uint64 // size of the child's stack
	TLS        uint64 // new TLS (CLONE_SETTLS)
	SetTid     uint64 // pointer to a pid_t array (VER1)
	SetTidSize uint64 // its length (VER1)
	Cgroup     uint64 // cgroup fd (CLONE_INTO_CGROUP, VER2)
}

// Kernel constants DecodeCloneArgs' checks use.
const (
	maxPidNSLevel   = 32          // MAX_PID_NS_LEVEL (include/linux/pid_namespace.h)
	cSignal         = 0xff        // CSIGNAL
	nSig            = 64          // _NSIG on x86_64; valid_signal(sig) is sig <= _NSIG
	cloneIntoCgroup = 0x200000000 // CLONE_INTO_CGROUP
	intMax          = 1<<31 - 1   // INT_MAX
)

// DecodeCloneArgs decodes a struct clone_args of len(b) bytes, len(b) being
// the size the watchee passed, with the checks copy_clone_args_from_user
// (kernel/fork.c) makes in this order: more than PageSize bytes is
// ErrTooBig; fewer than CloneArgsSizeVer0 ErrInvalid; a non-zero byte past
// CloneArgsSizeLatest ErrTooBig; then, all ErrInvalid, set_tid_size above
// MAX_PID_NS_LEVEL, set_tid and set_tid_size not both zero or both non-zero,
// an exit_signal with bits beyond CSIGNAL or above _NSIG, and
// CLONE_INTO_CGROUP with a cgroup above INT_MAX or a struct older than VER2.
// For those last checks it returns the decoded fields along with the error,
// for the audit record. It does not read the set_tid array (EFAULT) nor make
// clone3_args_valid's flag checks (EINVAL), which the kernel does after
// these. It never panics.
func DecodeCloneArgs(b []byte) (CloneArgs, error) {
	switch {
	case len(b) > PageSize:
		return CloneArgs{}, ErrTooBig
	case len(b) < CloneArgsSizeVer0:
		return CloneArgs{}, ErrInvalid
	case len(b) > CloneArgsSizeLatest && !allZero(b[CloneArgsSizeLatest:]):
		return CloneArgs{}, ErrTooBig
	}
	// An older struct, or a size between versions, is zero-extended.
	var full [CloneArgsSizeLatest]byte
	copy(full[:], b)
	c := CloneArgs{
		Flags:      hostEndian.Uint64(full[0:]),
		Pidfd:      hostEndian.Uint64(full[8:]),
		ChildTid:   hostEndian.Uint64(full[16:]),
		ParentTid:  hostEndian.Uint64(full[24:]),
		ExitSignal: hostEndian.Uint64(full[32:]),
		Stack:      hostEndian.Uint64(full[40:]),
		StackSize:  hostEndian.Uint64(full[48:]),
		TLS:        hostEndian.Uint64(full[56:]),
		SetTid:     hostEndian.Uint64(full[64:]),
		SetTidSize: hostEndian.Uint64(full[72:]),
		Cgroup:     hostEndian.Uint64(full[80:]),
	}
	switch {
	case c.SetTidSize > maxPidNSLevel,
		c.SetTid == 0 && c.SetTidSize > 0,
		c.SetTid != 0 && c.SetTidSize == 0,
		c.ExitSignal&^cSignal != 0 || c.ExitSignal > nSig,
		c.Flags&cloneIntoCgroup != 0 && (c.Cgroup > intMax || len(b) < CloneArgsSizeVer2):
		return c, ErrInvalid
	}
	return c, nil
}
