package policy

import (
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

// flagPred is one named flag as a predicate on a flags word: it holds when
// flags&mask == value. Most names are a single bit (mask == value), but some
// need more: the access modes are a two-bit field, not bits, and multi-bit
// names like O_TMPFILE (__O_TMPFILE|O_DIRECTORY) or O_SYNC (__O_SYNC|O_DSYNC)
// hold only when every one of their bits is set, so that `any: [O_SYNC]` does
// not fire on a plain O_DSYNC open.
type flagPred struct {
	mask, value uint64
}

func (p flagPred) holds(flags uint64) bool { return flags&p.mask == p.value }

func bit(v uint64) flagPred { return flagPred{v, v} }

// Kernel values that golang.org/x/sys/unix does not carry as the kernel has
// them. Keep in sync with the kernel's uapi headers.
const (
	// oLargefile is O_LARGEFILE as the x86_64 kernel defines it
	// (include/uapi/asm-generic/fcntl.h). unix.O_LARGEFILE is 0 on amd64,
	// mirroring glibc, which never passes it on 64-bit; the register the
	// policy sees carries the kernel's bit if a watchee sets it.
	oLargefile = 0o100000
	// resolveCached is RESOLVE_CACHED (Linux 5.12,
	// include/uapi/linux/openat2.h), missing from the x/sys release vigil
	// pins.
	resolveCached = 0x20
	// cloneSignalMask is CSIGNAL: in clone(2) (not clone3) the low byte of
	// the flags register is the exit signal and the kernel drops the upper
	// 32 bits (kernel/fork.c, `lower_32_bits(clone_flags) & ~CSIGNAL`). The
	// policy matches what the kernel uses, so 0x80 in that byte is never
	// CLONE_NEWTIME and bit 32 is never CLONE_CLEAR_SIGHAND for clone(2).
	cloneSignalMask = 0xff
)

// cloneRegisterMask is applied to clone(2)'s flags before matching.
const cloneRegisterMask = 0xffffffff &^ uint64(cloneSignalMask)

var openFlags = map[string]flagPred{
	// Access modes compare the two-bit field. O_RDWR also holds for mode 3,
	// which Linux accepts for "ioctl-only" opens that need read and write
	// permission (fs/open.c ACC_MODE); a deny of O_RDWR must not be evaded
	// by it.
	"O_RDONLY": {unix.O_ACCMODE, unix.O_RDONLY},
	"O_WRONLY": {unix.O_ACCMODE, unix.O_WRONLY},
	"O_RDWR":   {unix.O_RDWR, unix.O_RDWR},

	"O_CREAT":     bit(unix.O_CREAT),
	"O_EXCL":      bit(unix.O_EXCL),
	"O_TRUNC":     bit(unix.O_TRUNC),
	"O_APPEND":    bit(unix.O_APPEND),
	"O_NOFOLLOW":  bit(unix.O_NOFOLLOW),
	"O_DIRECTORY": bit(unix.O_DIRECTORY),
	"O_PATH":      bit(unix.O_PATH),
	"O_TMPFILE":   bit(unix.O_TMPFILE),
	"O_CLOEXEC":   bit(unix.O_CLOEXEC),
	"O_NONBLOCK":  bit(unix.O_NONBLOCK),
	"O_SYNC":      bit(unix.O_SYNC),
	"O_DSYNC":     bit(unix.O_DSYNC),
	"O_NOATIME":   bit(unix.O_NOATIME),
	"O_NOCTTY":    bit(unix.O_NOCTTY),
	"O_LARGEFILE": bit(oLargefile),
	"O_DIRECT":    bit(unix.O_DIRECT),
	"O_ASYNC":     bit(unix.O_ASYNC),
}

// cloneFlags is every CLONE_* flag of include/uapi/linux/sched.h (Linux 6.18).
var cloneFlags = map[string]flagPred{
	"CLONE_NEWTIME":        bit(unix.CLONE_NEWTIME),
	"CLONE_VM":             bit(unix.CLONE_VM),
	"CLONE_FS":             bit(unix.CLONE_FS),
	"CLONE_FILES":          bit(unix.CLONE_FILES),
	"CLONE_SIGHAND":        bit(unix.CLONE_SIGHAND),
	"CLONE_PIDFD":          bit(unix.CLONE_PIDFD),
	"CLONE_PTRACE":         bit(unix.CLONE_PTRACE),
	"CLONE_VFORK":          bit(unix.CLONE_VFORK),
	"CLONE_PARENT":         bit(unix.CLONE_PARENT),
	"CLONE_THREAD":         bit(unix.CLONE_THREAD),
	"CLONE_NEWNS":          bit(unix.CLONE_NEWNS),
	"CLONE_SYSVSEM":        bit(unix.CLONE_SYSVSEM),
	"CLONE_SETTLS":         bit(unix.CLONE_SETTLS),
	"CLONE_PARENT_SETTID":  bit(unix.CLONE_PARENT_SETTID),
	"CLONE_CHILD_CLEARTID": bit(unix.CLONE_CHILD_CLEARTID),
	"CLONE_DETACHED":       bit(unix.CLONE_DETACHED),
	"CLONE_UNTRACED":       bit(unix.CLONE_UNTRACED),
	"CLONE_CHILD_SETTID":   bit(unix.CLONE_CHILD_SETTID),
	"CLONE_NEWCGROUP":      bit(unix.CLONE_NEWCGROUP),
	"CLONE_NEWUTS":         bit(unix.CLONE_NEWUTS),
	"CLONE_NEWIPC":         bit(unix.CLONE_NEWIPC),
	"CLONE_NEWUSER":        bit(unix.CLONE_NEWUSER),
	"CLONE_NEWPID":         bit(unix.CLONE_NEWPID),
	"CLONE_NEWNET":         bit(unix.CLONE_NEWNET),
	"CLONE_IO":             bit(unix.CLONE_IO),
	"CLONE_CLEAR_SIGHAND":  bit(unix.CLONE_CLEAR_SIGHAND),
	"CLONE_INTO_CGROUP":    bit(unix.CLONE_INTO_CGROUP),
}

var resolveFlags = map[string]flagPred{
	"RESOLVE_NO_XDEV":       bit(unix.RESOLVE_NO_XDEV),
	"RESOLVE_NO_MAGICLINKS": bit(unix.RESOLVE_NO_MAGICLINKS),
	"RESOLVE_NO_SYMLINKS":   bit(unix.RESOLVE_NO_SYMLINKS),
	"RESOLVE_BENEATH":       bit(unix.RESOLVE_BENEATH),
	"RESOLVE_IN_ROOT":       bit(unix.RESOLVE_IN_ROOT),
	"RESOLVE_CACHED":        bit(resolveCached),
}

// flagCond is a compiled `{any: [...], all: [...], none: [...]}`; every
// present list must hold. A nil list is absent.
type flagCond struct {
	any, all, none []flagPred
}

func (f *flagCond) holds(flags uint64) bool {
	if f.any != nil {
		ok := false
		for _, p := range f.any {
			if p.holds(flags) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, p := range f.all {
		if !p.holds(flags) {
			return false
		}
	}
	for _, p := range f.none {
		if p.holds(flags) {
			return false
		}
	}
	return true
}

// RegisterFlagsPrescreen reports which bits of syscall nr's flags register
// the seccomp filter can test so that only calls carrying one of them reach
// vigil: those of clone(2), whose flags are a register (clone3's are in
// memory), when every rule naming it matches on flags alone, but a last rule
// without match, and the verdict for a call carrying none of the bits is a
// plain allow. Every flag a rule tests is one or more of the bits, so a call
// without any of them gets the verdict of a call with no flags at all;
// letting it run untrapped gives it that verdict, without a record (plain
// allows are recorded at debug level only). A policy that denies
// CLONE_NEWUSER then leaves every fork and thread creation untrapped.
func (p *Policy) RegisterFlagsPrescreen(nr int) (mask uint64, ok bool) {
	e := p.entry(nr)
	if e == nil || len(e.rules) == 0 || e.flagMask != cloneRegisterMask {
		return 0, false
	}
	for i, r := range e.rules {
		switch {
		case r.m.keys == sysinfo.KeyFlags && r.m.flags != nil:
			for _, list := range [][]flagPred{r.m.flags.any, r.m.flags.all, r.m.flags.none} {
				for _, pr := range list {
					if pr.value != pr.mask {
						return 0, false // not a set of bits that must be set
					}
					mask |= pr.mask
				}
			}
		case r.m.keys == 0 && i == len(e.rules)-1:
		default:
			return 0, false
		}
	}
	mask &= cloneRegisterMask
	if mask == 0 {
		return 0, false
	}
	if d := p.Evaluate(&Call{Nr: nr, HasFlags: true}); d.Action != ActionAllow {
		return 0, false
	}
	return mask, true
}
