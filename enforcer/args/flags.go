package args

import "strconv"

// flagName is one entry of a flag table: a value (one bit or a combination)
// and its name.
type flagName struct {
	val  uint64
	name string
}

// The tables follow strace's xlat files (src/xlat/open_mode_flags.in,
// open_access_modes.in, clone_flags.in, clone3_flags.in,
// open_resolve_flags.in), order included, so that audit records read like
// strace output: a combined value comes before its parts (O_SYNC before
// O_DSYNC, O_TMPFILE before O_DIRECTORY) and takes them. Values are the
// kernel's x86_64 ones (include/uapi/asm-generic/fcntl.h,
// include/uapi/linux/sched.h, include/uapi/linux/openat2.h); keep in sync.
// They are literals because x/sys gives O_LARGEFILE as 0 on amd64 (glibc's
// view), while the kernel's bit is 0100000.

var openAccessModes = [4]string{"O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"}

const openAccMode = 0o3

var openFlags = []flagName{
	{0o100, "O_CREAT"},
	{0o200, "O_EXCL"},
	{0o400, "O_NOCTTY"},
	{0o1000, "O_TRUNC"},
	{0o2000, "O_APPEND"},
	{0o4000, "O_NONBLOCK"},
	{0o4010000, "O_SYNC"},
	{0o4000000, "__O_SYNC"},
	{0o10000, "O_DSYNC"},
	{0o40000, "O_DIRECT"},
	{0o100000, "O_LARGEFILE"},
	{0o400000, "O_NOFOLLOW"},
	{0o1000000, "O_NOATIME"},
	{0o2000000, "O_CLOEXEC"},
	{0o10000000, "O_PATH"},
	{0o20200000, "O_TMPFILE"},
	{0o20000000, "__O_TMPFILE"},
	{0o200000, "O_DIRECTORY"},
	{0o20000, "FASYNC"},
}

// openFlagAliases are other names of open flags that a policy may use.
var openFlagAliases = []flagName{
	{0o4000, "O_NDELAY"},
	{0o20000, "O_ASYNC"},
	{0o4010000, "O_RSYNC"},
	{0o4010000, "O_FSYNC"},
}

// cloneFlags are the flags clone(2) and clone3 share, in strace's order. The
// low byte (CSIGNAL) is the exit signal in clone(2)'s flags register.
var cloneFlags = []flagName{
	{0x00000100, "CLONE_VM"},
	{0x00000200, "CLONE_FS"},
	{0x00000400, "CLONE_FILES"},
	{0x00000800, "CLONE_SIGHAND"},
	{0x00001000, "CLONE_PIDFD"},
	{0x00002000, "CLONE_PTRACE"},
	{0x00004000, "CLONE_VFORK"},
	{0x00008000, "CLONE_PARENT"},
	{0x00010000, "CLONE_THREAD"},
	{0x00020000, "CLONE_NEWNS"},
	{0x00040000, "CLONE_SYSVSEM"},
	{0x00080000, "CLONE_SETTLS"},
	{0x00100000, "CLONE_PARENT_SETTID"},
	{0x00200000, "CLONE_CHILD_CLEARTID"},
	// CLONE_DETACHED (0x00400000) is ignored by clone and refused by
	// clone3; strace prints it as a number, and so does vigil.
	{0x00800000, "CLONE_UNTRACED"},
	{0x01000000, "CLONE_CHILD_SETTID"},
	{0x02000000, "CLONE_NEWCGROUP"},
	{0x04000000, "CLONE_NEWUTS"},
	{0x08000000, "CLONE_NEWIPC"},
	{0x10000000, "CLONE_NEWUSER"},
	{0x20000000, "CLONE_NEWPID"},
	{0x40000000, "CLONE_NEWNET"},
	{0x80000000, "CLONE_IO"},
}

// clone3Flags are the flags only clone3 takes (they need 64 bits, or reuse a
// bit of CSIGNAL).
var clone3Flags = []flagName{
	{0x00000080, "CLONE_NEWTIME"},
	{0x100000000, "CLONE_CLEAR_SIGHAND"},
	{0x200000000, "CLONE_INTO_CGROUP"},
}

var cloneFlagAliases = []flagName{
	{0x00400000, "CLONE_DETACHED"},
}

var resolveFlags = []flagName{
	{0x01, "RESOLVE_NO_XDEV"},
	{0x02, "RESOLVE_NO_MAGICLINKS"},
	{0x04, "RESOLVE_NO_SYMLINKS"},
	{0x08, "RESOLVE_BENEATH"},
	{0x10, "RESOLVE_IN_ROOT"},
	{0x20, "RESOLVE_CACHED"},
}

// appendFlags appends the names of the entries of tab that f contains,
// separated by '|' (with a leading '|' when sep is set), and returns the bits
// that no entry named.
func appendFlags(dst []byte, f uint64, tab []flagName, sep bool) ([]byte, uint64, bool) {
	for _, e := range tab {
		if f&e.val == e.val {
			if sep {
				dst = append(dst, '|')
			}
			dst = append(dst, e.name...)
			sep = true
			f &^= e.val
		}
	}
	return dst, f, sep
}

// appendRest appends the bits no name covered as a hex number, strace's
// fallback, or "0" when nothing at all was printed.
func appendRest(dst []byte, rest uint64, sep bool) []byte {
	if rest == 0 {
		if !sep {
			dst = append(dst, '0')
		}
		return dst
	}
	if sep {
		dst = append(dst, '|')
	}
	dst = append(dst, "0x"...)
	return strconv.AppendUint(dst, rest, 16)
}

// AppendOpenFlags appends open flags formatted as strace does
// ("O_WRONLY|O_CREAT|O_TRUNC"): the access mode first, always, then the flag
// names, then any unnamed bits as one hex number. It does not allocate when dst
// has room. For open and openat pass uint64(uint32(reg)), since the kernel
// takes those flags as an int; openat2's open_how.flags has all 64 bits.
func AppendOpenFlags(dst []byte, f uint64) []byte {
	dst = append(dst, openAccessModes[f&openAccMode]...)
	dst, rest, sep := appendFlags(dst, f&^openAccMode, openFlags, true)
	return appendRest(dst, rest, sep)
}

// FormatOpenFlags returns AppendOpenFlags(nil, f) as a string.
func FormatOpenFlags(f uint64) string {
	return string(AppendOpenFlags(make([]byte, 0, 64), f))
}

// AppendCloneFlags appends clone3's clone_args.flags formatted as strace does
// ("CLONE_NEWUSER|CLONE_NEWNS"), "0" for none. In clone3 the low byte holds
// no signal, and 0x80 is CLONE_NEWTIME.
func AppendCloneFlags(dst []byte, f uint64) []byte {
	dst, rest, sep := appendFlags(dst, f, cloneFlags, false)
	dst, rest, sep = appendFlags(dst, rest, clone3Flags, sep)
	return appendRest(dst, rest, sep)
}

// FormatCloneFlags returns AppendCloneFlags(nil, f) as a string.
func FormatCloneFlags(f uint64) string {
	return string(AppendCloneFlags(make([]byte, 0, 64), f))
}

// AppendLegacyCloneFlags appends clone(2)'s flags register formatted as strace
// does: the CLONE_* names of the bits above CSIGNAL, then the exit signal
// held in the low byte ("CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD").
// The kernel's clone takes the flags as an unsigned long, all 64 bits.
func AppendLegacyCloneFlags(dst []byte, f uint64) []byte {
	sig := f & cSignal
	dst, rest, sep := appendFlags(dst, f&^cSignal, cloneFlags, false)
	if rest != 0 || sig == 0 {
		dst = appendRest(dst, rest, sep)
		sep = true
	}
	if sig != 0 {
		if sep {
			dst = append(dst, '|')
		}
		dst = appendSignal(dst, sig)
	}
	return dst
}

// FormatLegacyCloneFlags returns AppendLegacyCloneFlags(nil, f) as a string.
func FormatLegacyCloneFlags(f uint64) string {
	return string(AppendLegacyCloneFlags(make([]byte, 0, 64), f))
}

var signalNames = [...]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP",
	6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1",
	11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
	16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP",
	21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ",
	26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR",
	31: "SIGSYS",
}

// appendSignal appends a signal's name as strace prints it: SIGCHLD,
// SIGRT_n for the real-time signals 32..64, the number otherwise.
func appendSignal(dst []byte, sig uint64) []byte {
	switch {
	case sig < uint64(len(signalNames)) && signalNames[sig] != "":
		return append(dst, signalNames[sig]...)
	case sig >= 32 && sig <= nSig:
		dst = append(dst, "SIGRT_"...)
		return strconv.AppendUint(dst, sig-32, 10)
	}
	return strconv.AppendUint(dst, sig, 10)
}

// AppendResolve appends openat2's open_how.resolve formatted as strace does
// ("RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS"), "0" for none.
func AppendResolve(dst []byte, f uint64) []byte {
	dst, rest, sep := appendFlags(dst, f, resolveFlags, false)
	return appendRest(dst, rest, sep)
}

// FormatResolve returns AppendResolve(nil, f) as a string.
func FormatResolve(f uint64) string {
	return string(AppendResolve(make([]byte, 0, 64), f))
}

// OpenFlagValue returns the value of an open flag or access mode name
// (O_CREAT, O_WRONLY, ...; also the aliases O_NDELAY, O_ASYNC, O_RSYNC,
// O_FSYNC), so that policy parsing and audit formatting share one table. The
// access modes are values of the two low bits, not bits: O_RDONLY is 0.
func OpenFlagValue(name string) (uint64, bool) {
	for i, n := range openAccessModes {
		if n == name {
			return uint64(i), true
		}
	}
	return lookupFlag(name, openFlags, openFlagAliases)
}

// CloneFlagValue returns the value of a CLONE_* name, clone3-only flags and
// CLONE_DETACHED included.
func CloneFlagValue(name string) (uint64, bool) {
	if v, ok := lookupFlag(name, cloneFlags, clone3Flags); ok {
		return v, true
	}
	return lookupFlag(name, cloneFlagAliases, nil)
}

// ResolveFlagValue returns the value of a RESOLVE_* name.
func ResolveFlagValue(name string) (uint64, bool) {
	return lookupFlag(name, resolveFlags, nil)
}

func lookupFlag(name string, tabs ...[]flagName) (uint64, bool) {
	for _, tab := range tabs {
		for _, e := range tab {
			if e.name == name {
				return e.val, true
			}
		}
	}
	return 0, false
}
