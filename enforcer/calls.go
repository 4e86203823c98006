package enforcer

import (
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/args"
	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

// The per-syscall table. enforcer/sysinfo says how a syscall's arguments
// are laid out (what decode reads); the handlings below say everything else
// vigil does with the call: the kernel's own checks it repeats before
// reading, how an allow is carried out (bound in eBPF, performed by vigil,
// or neither), how vigil performs it, and whether it changes the view
// vigil resolves paths in. Supporting a new syscall means a catalog entry in
// sysinfo, an entry here, and the functions the entry names.
//
// docs/architecture.md shows where the table sits in the data path.

// handling is what vigil knows of one syscall beyond its argument layout.
// The zero handling is a call vigil decodes and evaluates, and continues
// unverified when a content-dependent rule allows it.
type handling struct {
	// before answers what the kernel answers before it reads any pointer
	// argument (fidelity.go); 0 lets decoding go on.
	before func(s *receiver, n *notify.Notif, c *call) unix.Errno
	// afterNames answers what the kernel answers after it copied the
	// names and before it looks them up (fidelity.go).
	afterNames func(n *notify.Notif, c *call) unix.Errno
	// impliedFlags are open flags the syscall implies (creat).
	impliedFlags uint64
	// perform carries out an allowed call by vigil itself, when vigil does
	// for this call; handled false leaves it to the binding (an open vigil
	// need not or cannot emulate, an AF_UNIX connect).
	perform func(s *receiver, l notify.Answerer, n *notify.Notif, c *call, d policy.Decision) (o outcome, handled bool)
	// bind fills s.bind with the binding that pins the object an allowed
	// call must use (bind.go).
	bind func(s *receiver, n *notify.Notif, c *call) (bindResult, unix.Errno)
	// emulation is how vigil performs the call for an emulate verdict or
	// an allow no binding can pin (nil: vigil cannot emulate it).
	emulation *emulation
	// send marks the sends whose destination address rules govern (send.go).
	send sendKind
	// open marks the open family: a write-only or read-write open that
	// neither creates nor truncates keeps decoding's descriptor, which the
	// emulator may open as is (receiver.keepsOpenTarget).
	open bool
	// exec marks calls that replace the process image: the binding reads
	// a script's #! line through the vetted file, and what vigil caches of
	// the process is stale afterwards.
	exec bool
	// socketCreates: the AF_UNIX path names a socket file the call creates
	// (bind), so its final name is not followed and may be missing.
	socketCreates bool
	// rootChange reports whether the call could move its caller out of
	// vigil's root directory or mount namespace (Config.OwnRoot).
	rootChange func(s *receiver, n *notify.Notif) bool
	// copiesMountNS reports whether the call makes a new mount namespace
	// (CLONE_NEWNS): a root change, and new mounts, as createsMounts.
	copiesMountNS func(s *receiver, n *notify.Notif) bool
	// createsMounts reports whether the call may create mounts. Their ids
	// may be those of mounts vigil read of that are gone since, so what it
	// read of mount tables must be dropped first (view.Renumber).
	createsMounts func(n *notify.Notif) bool
	// mountChange reports whether the call may move or unmount a mount,
	// after which reference names must be found the slow way (view.Unsettle).
	mountChange func(n *notify.Notif) bool
	// explain says, for `vigil policy check --explain`, which calls are
	// bound and which performed when both can happen.
	explain string
}

// emulation is how vigil performs a syscall on objects it prepared in the
// watchee's view: what each path argument names for the call (lookups, in
// argument order; onFd calls act on their descriptor argument) and the call
// itself.
type emulation struct {
	lookups func(c *call) []emulate.Lookup
	onFd    bool
	do      performFunc
}

// performFunc performs an emulated call on its prepared objects. lend says
// vigil lends its privilege (an emulate verdict for mknod and setxattr).
type performFunc func(s *receiver, em *emulate.Emulator, p, p2 *emulate.Prepared, c *call, a *[6]uint64, lend bool) (emulate.Result, error)

// Carry says how vigil carries out an allow whose verdict depended on a
// syscall's pointer arguments (docs/design.md §2). Its String, generated
// from the line comments below, names the mechanism as `vigil policy check
// --explain` prints it.
type Carry uint8

//go:generate go tool -modfile=../scripts/lint/go.mod stringer -type=Carry -linecomment

// Ways to carry out a content-dependent allow.
const (
	// CarryNone: the policy cannot allow the call depending on its
	// pointer arguments (no such rule, or only denials), so nothing
	// needs carrying out: the kernel's own checks apply.
	CarryNone Carry = iota // none needed
	// CarryUnverified: no mechanism; the call is continued unverified and
	// its record says verified "none" (vigil warns at startup).
	CarryUnverified // unverified
	// CarryBind: an eBPF binding pins the object the kernel must use.
	CarryBind // bind
	// CarryEmulate: vigil performs the call from its own copy of the
	// arguments.
	CarryEmulate // emulate
	// CarryBindOrEmulate: bound or performed depending on the call itself
	// (opens: reads bound; writes, creations, FIFOs and devices performed;
	// connect: AF_UNIX bound, IP performed).
	CarryBindOrEmulate // bind or emulate
)

// carry says how h's content-dependent allows are carried out when every
// mechanism is available.
func (h *handling) carry() Carry {
	emulates := h.perform != nil || h.send != sendNone
	switch {
	case h.bind != nil && emulates:
		return CarryBindOrEmulate
	case h.bind != nil:
		return CarryBind
	case emulates:
		return CarryEmulate
	}
	return CarryUnverified
}

// Entries shared by several syscalls.
var (
	openHandling = handling{perform: (*receiver).performOpen, bind: (*receiver).bindOpen, open: true,
		explain: "eBPF binding for reads; vigil performs writes, creations, truncations, O_TMPFILE, FIFOs and devices"}
	execHandling = handling{bind: (*receiver).bindExec, exec: true}
	// A clone child's namespaces are pinned in eBPF; a new mount namespace
	// leaves vigil's root.
	cloneHandling = handling{bind: (*receiver).bindClone, copiesMountNS: newMountNS}
)

// handlingsByName is the table. Syscalls vigil decodes (sysinfo's catalog)
// that are missing here get the zero handling; the others are trapped only
// to keep vigil's view of the watchee right.
var handlingsByName = map[string]handling{
	"open": openHandling, "openat": openHandling, "openat2": openHandling,
	"creat": withImpliedFlags(openHandling, unix.O_CREAT|unix.O_WRONLY|unix.O_TRUNC),

	"execve": execHandling, "execveat": withAfterNames(execHandling, checkExecveat),

	"clone":  cloneHandling,
	"clone3": {bind: (*receiver).bindClone, copiesMountNS: (*receiver).clone3NewMountNS},

	// IP connects are performed on the watchee's own socket; AF_UNIX
	// connects are bound (performed, the server would see vigil as the
	// peer).
	"connect": {perform: (*receiver).performConnect, bind: (*receiver).bindConnect,
		explain: "vigil performs IP connects; AF_UNIX connects are bound in eBPF"},
	// bind(2) is performed on the watchee's own socket, an AF_UNIX path
	// in the directory vigil vetted (socketbind.go).
	"bind": {perform: (*receiver).performBind, socketCreates: true},
	// Sends that may carry a destination are performed by vigil (send.go).
	"sendto": {send: sendTo}, "sendmsg": {send: sendMsg}, "sendmmsg": {send: sendMmsg},

	"unlink":   emulated(onParent, doUnlink(0)),
	"unlinkat": withBefore(emulated(onParent, doUnlink(-1)), checkUnlinkat),
	"rmdir":    emulated(onParent, doUnlink(unix.AT_REMOVEDIR)),
	"mkdir":    emulated(onParent, doMkdir), "mkdirat": emulated(onParent, doMkdir),
	"rename":    emulated(onParents, doRename),
	"renameat":  emulated(onParents, doRename),
	"renameat2": withBefore(emulated(onParents, doRename), checkRenameat2),
	"link":      emulated(onLinkArgs, doLink),
	"linkat":    withBefore(emulated(onLinkArgs, doLink), checkLinkat),
	"symlink":   emulated(onParent, doSymlink), "symlinkat": emulated(onParent, doSymlink),
	"chmod": emulated(onObject, doChmod), "fchmodat": emulated(onObject, doChmod),
	"fchmodat2": withBefore(emulated(onObject, doChmod), checkFchmodat2),
	"chown":     emulated(onObject, doChown), "lchown": emulated(onObject, doChown),
	"fchownat": withBefore(emulated(onObject, doChown), checkFchownat),
	"truncate": withBefore(emulated(onObject, doTruncate), checkTruncate),
	"mknod":    emulated(onParent, doMknod), "mknodat": emulated(onParent, doMknod),
	"setxattr":  withBefore(emulated(onObject, doSetxattr), checkSetxattr),
	"lsetxattr": withBefore(emulated(onObject, doSetxattr), checkSetxattr),
	"fsetxattr": withBefore(handling{perform: (*receiver).performEmulation,
		emulation: &emulation{onFd: true, do: doSetxattr}}, checkSetxattr),
	"removexattr":  withBefore(emulated(onObject, doRemovexattr), checkRemovexattr),
	"lremovexattr": withBefore(emulated(onObject, doRemovexattr), checkRemovexattr),
	"fremovexattr": withBefore(handling{perform: (*receiver).performEmulation,
		emulation: &emulation{onFd: true, do: doRemovexattr}}, checkRemovexattr),

	// Trapped only for vigil's own view (filter.Spec WatchRoot, WatchMounts).
	"chroot": {rootChange: always}, "setns": {rootChange: always},
	"unshare":    {copiesMountNS: newMountNS},
	"pivot_root": {rootChange: always, mountChange: anyMountChange},
	"mount":      {createsMounts: anyMountChange, mountChange: mountMoves},
	"umount2":    {mountChange: anyMountChange}, "move_mount": {mountChange: anyMountChange},
	"open_tree": {createsMounts: treeClones}, "fsmount": {createsMounts: anyMountChange},
}

// handlings is the table indexed by syscall number, for the notify loop.
var handlings = func() (t [sysinfo.MaxNr]*handling) {
	for name, h := range handlingsByName {
		nr, ok := sysinfo.Number(name)
		if !ok || nr < 0 || nr >= sysinfo.MaxNr {
			panic("enforcer: the per-syscall table names unknown syscall " + name)
		}
		h := h
		t[nr] = &h
	}
	return t
}()

// noHandling is the entry of a syscall the table does not name.
var noHandling = &handling{}

// handlingOf returns syscall nr's entry (the zero handling when the table
// does not name it).
func handlingOf(nr int) *handling {
	if nr >= 0 && nr < len(handlings) && handlings[nr] != nil {
		return handlings[nr]
	}
	return noHandling
}

// handlingNamed returns the named syscall's entry.
func handlingNamed(name string) *handling {
	nr, ok := sysinfo.Number(name)
	if !ok {
		return noHandling
	}
	return handlingOf(nr)
}

func emulated(lookups func(*call) []emulate.Lookup, do performFunc) handling {
	return handling{perform: (*receiver).performEmulation, emulation: &emulation{lookups: lookups, do: do}}
}

func withBefore(h handling, check func(*receiver, *notify.Notif, *call) unix.Errno) handling {
	h.before = check
	return h
}

func withAfterNames(h handling, check func(*notify.Notif, *call) unix.Errno) handling {
	h.afterNames = check
	return h
}

func withImpliedFlags(h handling, flags uint64) handling {
	h.impliedFlags = flags
	return h
}

// What each path argument of an emulated call names: a name in a directory,
// or the object (following a final symlink or not).
var (
	onParent  = func(*call) []emulate.Lookup { return lookupParent }
	onParents = func(*call) []emulate.Lookup { return lookupParents }
	onObject  = func(c *call) []emulate.Lookup {
		if c.follows(c.sc.Follow) {
			return lookupFollow
		}
		return lookupNoFollow
	}
	// link links the object itself with AT_SYMLINK_FOLLOW, else the name.
	onLinkArgs = func(c *call) []emulate.Lookup {
		if c.follows(c.sc.Follow) {
			return lookupFollowThenParent
		}
		return lookupParents
	}

	lookupParent           = []emulate.Lookup{emulate.LookupParent}
	lookupParents          = []emulate.Lookup{emulate.LookupParent, emulate.LookupParent}
	lookupFollow           = []emulate.Lookup{emulate.LookupFollow}
	lookupNoFollow         = []emulate.Lookup{emulate.LookupNoFollow}
	lookupFollowThenParent = []emulate.Lookup{emulate.LookupFollow, emulate.LookupParent}
)

// The emulated calls, on their prepared objects.

func doUnlink(flags int) performFunc {
	return func(_ *receiver, em *emulate.Emulator, p, _ *emulate.Prepared, c *call, _ *[6]uint64, _ bool) (emulate.Result, error) {
		if flags < 0 {
			return em.Unlinkat(p, int(c.atFlags))
		}
		return em.Unlinkat(p, flags)
	}
}

func doMkdir(_ *receiver, em *emulate.Emulator, p, _ *emulate.Prepared, c *call, _ *[6]uint64, _ bool) (emulate.Result, error) {
	return em.Mkdirat(p, c.mode)
}

func doRename(_ *receiver, em *emulate.Emulator, p, p2 *emulate.Prepared, c *call, a *[6]uint64, _ bool) (emulate.Result, error) {
	var flags uint
	if i := c.sc.ArgIndex(sysinfo.ArgRenameFlags); i >= 0 {
		flags = uint(uint32(a[i]))
	}
	return em.Renameat2(p, p2, flags)
}

func doLink(_ *receiver, em *emulate.Emulator, p, p2 *emulate.Prepared, _ *call, _ *[6]uint64, _ bool) (emulate.Result, error) {
	return em.Linkat(p, p2)
}

func doSymlink(_ *receiver, em *emulate.Emulator, p, _ *emulate.Prepared, c *call, _ *[6]uint64, _ bool) (emulate.Result, error) {
	return em.Symlinkat(c.target, p)
}

func doChmod(_ *receiver, em *emulate.Emulator, p, _ *emulate.Prepared, c *call, _ *[6]uint64, _ bool) (emulate.Result, error) {
	return em.Fchmodat(p, c.mode)
}

func doChown(_ *receiver, em *emulate.Emulator, p, _ *emulate.Prepared, c *call, a *[6]uint64, _ bool) (emulate.Result, error) {
	i := c.firstPathArg()
	return em.Fchownat(p, int(int32(a[i+1])), int(int32(a[i+2])))
}

func doTruncate(_ *receiver, em *emulate.Emulator, p, _ *emulate.Prepared, _ *call, a *[6]uint64, _ bool) (emulate.Result, error) {
	return em.Truncate(p, int64(a[1]))
}

func doMknod(_ *receiver, em *emulate.Emulator, p, _ *emulate.Prepared, c *call, a *[6]uint64, lend bool) (emulate.Result, error) {
	return em.Mknodat(p, c.mode, a[c.sc.ArgIndex(sysinfo.ArgDev)], lend)
}

func doSetxattr(s *receiver, em *emulate.Emulator, p, _ *emulate.Prepared, c *call, a *[6]uint64, lend bool) (emulate.Result, error) {
	i := c.sc.ArgIndex(sysinfo.ArgXattrValue)
	m, err := args.ReadXattrValue(c.tid, a[i], a[i+1], s.scratch.XattrValue[:])
	if err != nil {
		return emulate.Result{}, argUnreadable{errnoFor(err)}
	}
	return em.Setxattr(p, c.pc.Xattr, s.scratch.XattrValue[:m], int(int32(a[i+2])), lend)
}

func doRemovexattr(_ *receiver, em *emulate.Emulator, p, _ *emulate.Prepared, c *call, _ *[6]uint64, _ bool) (emulate.Result, error) {
	return em.Removexattr(p, c.pc.Xattr)
}

// Changes of the caller's root or mount namespace (handling.rootChange,
// handling.copiesMountNS).
// Unreadable clone_args count as a change: fail towards the slower,
// always-correct resolution.

func always(*receiver, *notify.Notif) bool { return true }

func newMountNS(_ *receiver, n *notify.Notif) bool { return n.Data.Args[0]&unix.CLONE_NEWNS != 0 }

func (s *receiver) clone3NewMountNS(n *notify.Notif) bool {
	ca, err := args.ReadCloneArgs(int(n.Pid), n.Data.Args[0], n.Data.Args[1], s.scratch.Struct[:])
	return err != nil || ca.Flags&unix.CLONE_NEWNS != 0
}

// Changes of a mount topology (handling.mountChange, createsMounts): the
// calls filter.MountWatch traps.

func anyMountChange(*notify.Notif) bool { return true }

func mountMoves(n *notify.Notif) bool { return n.Data.Args[3]&unix.MS_MOVE != 0 }

func treeClones(n *notify.Notif) bool { return n.Data.Args[2]&unix.OPEN_TREE_CLONE != 0 }
