package enforcer

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/args"
	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/procinfo"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

// decision is one audit record's content (docs/design.md §6). It is a value so
// that a record whose kernel confirmation is still to come can be kept until
// the eBPF event arrives; immediate records never leave the stack.
type decision struct {
	level     zerolog.Level
	tgid, tid int
	comm      string
	syscall   string
	call      callView
	hasCall   bool
	rule      string
	action    policy.Action
	errno     unix.Errno
	verified  string
	withdrawn bool
	emulated  bool
	latency   time.Duration
	container string
	// reason says why vigil refused (see audit.FieldReason).
	reason string
	// replayed: the first result of a call vigil had carried out.
	replayed bool
	metrics  Metrics
}

// callView is the part of a decoded call an audit record shows.
type callView struct {
	paths, resolved [2]string
	dirfds          [2]int
	nPaths          int
	target          string
	flagSet         sysinfo.FlagSet
	pc              policy.Call
	err             unix.Errno
	// spelledSock is an AF_UNIX path as spelled; pc.Addr has it resolved.
	spelledSock string
}

// kernelView is what eBPF saw the kernel do, for the record's "kernel" field.
type kernelView struct {
	// atEnter marks a violation caught at sys_enter: there is no return
	// value yet.
	atEnter  bool
	ret      int64
	dev, ino uint64
	path     string
	peer     string
	child    int
	reason   string
	// replaced: another object under the vetted path stood in for it.
	replaced bool
}

// decisionOf builds the record of the outcome o for notification n.
func (s *receiver) decisionOf(n *notify.Notif, pi procinfo.Info, o *outcome, gone bool, lat time.Duration) decision {
	c := &s.c
	d := decision{
		tgid: pi.Tgid, tid: int(n.Pid), comm: pi.Comm,
		syscall: sysinfo.Name(int(n.Data.Nr)), action: o.dec.Action,
		rule: ruleName(o.dec.Rule), withdrawn: gone, latency: lat, container: s.cfg.Container,
		emulated: o.emulated(), metrics: s.cfg.Metrics,
	}
	if o.errno != 0 {
		d.errno = o.errno
		if !o.emulated() {
			d.action = policy.ActionDeny
		}
	}
	if c.err != 0 {
		// Decided before any rule was consulted.
		d.rule = ""
	}
	d.replayed = c.replayed
	if c.reason != "" {
		d.reason = c.reason
		if o.dec.Rule != nil || o.dec.Action == policy.ActionAllow || o.dec.Action == policy.ActionLog {
			d.reason = "allowed by " + ruleName(o.dec.Rule) + ", refused: " + c.reason
		}
	}
	if d.errno == 0 && d.action != policy.ActionKill && !o.emulated() {
		d.verified = o.grant.Verified()
	}

	switch {
	case c.err != 0 && o.dec.Rule == nil && c.reason == "":
		// vigil answered with the kernel's own errno for arguments it could
		// not vet (a missing file, a bad pointer): no policy refused it.
		d.level = zerolog.DebugLevel
	case d.action == policy.ActionAllow:
		d.level = zerolog.DebugLevel
	case d.action == policy.ActionLog:
		d.level = zerolog.InfoLevel
	case d.action == policy.ActionKill:
		d.level = zerolog.ErrorLevel
	default:
		d.level = zerolog.WarnLevel
	}
	if c.sc != nil {
		d.hasCall = true
		d.call = callView{
			paths: c.paths, dirfds: c.dirfds, nPaths: c.nPaths, target: c.target,
			flagSet: c.sc.Flags, pc: c.pc, err: c.err, spelledSock: c.spelledSock,
		}
		d.call.resolved[0], d.call.resolved[1] = c.objs[0].Path, c.objs[1].Path
	}
	return d
}

// emit writes d to l, with the kernel's view when k is not nil.
func (d *decision) emit(l *zerolog.Logger, k *kernelView) {
	if d.metrics != nil {
		d.metrics.Decision(d.syscall, d.action, d.rule, d.verified, d.emulated, d.latency)
	}
	ev := l.WithLevel(d.level)
	if ev == nil || !ev.Enabled() {
		return
	}
	ev = ev.Int(audit.FieldPid, d.tgid).Int(audit.FieldTid, d.tid)
	if audit.NeedsEscape(d.comm) {
		ev = ev.Str(audit.FieldComm, audit.Escape(d.comm)).Bool(audit.FieldCommEscaped, true)
	} else {
		ev = ev.Str(audit.FieldComm, d.comm)
	}
	ev = ev.Str(audit.FieldSyscall, d.syscall)
	if d.container != "" {
		ev = ev.Str(audit.FieldContainer, d.container)
	}
	if d.hasCall {
		ev = ev.Dict(audit.FieldArgs, d.call.dict())
	}
	ev = ev.Str(audit.FieldRule, d.rule).Str(audit.FieldAction, d.action.String())
	if d.errno != 0 {
		ev = ev.Str(audit.FieldErrno, errnoName(d.errno))
	}
	if d.reason != "" {
		ev = ev.Str(audit.FieldReason, d.reason)
	}
	ev = ev.Bool(audit.FieldEmulated, d.emulated)
	if d.verified != "" {
		ev = ev.Str(audit.FieldVerified, d.verified)
	}
	if k != nil {
		kd := zerolog.Dict()
		if !k.atEnter {
			kd = kd.Int64(audit.KernelRet, k.ret)
		}
		if k.dev != 0 || k.ino != 0 {
			kd = kd.Str(audit.KernelDev, strconv.FormatUint(uint64(unix.Major(k.dev)), 10)+":"+strconv.FormatUint(uint64(unix.Minor(k.dev)), 10)).
				Uint64(audit.KernelIno, k.ino)
		}
		if k.path != "" && audit.NeedsEscape(k.path) {
			kd = kd.Str(audit.KernelPath, audit.Escape(k.path)).Bool(audit.KernelPathEscaped, true)
		} else if k.path != "" {
			kd = kd.Str(audit.KernelPath, k.path)
		}
		if k.peer != "" {
			kd = kd.Str(audit.KernelPeer, k.peer)
		}
		if k.child != 0 {
			kd = kd.Int(audit.KernelChild, k.child)
		}
		if k.reason != "" {
			kd = kd.Str(audit.KernelReason, k.reason)
		}
		if k.replaced {
			kd = kd.Bool(audit.KernelReplaced, true)
		}
		ev = ev.Dict(audit.FieldKernel, kd)
	}
	if d.withdrawn {
		ev = ev.Bool(audit.FieldWithdrawn, true)
	}
	if d.replayed {
		ev = ev.Bool(audit.FieldReplayed, true)
	}
	ev.Float64(audit.FieldLatency, float64(d.latency.Nanoseconds())/1e3).Send()
}

// detach copies the view's strings into *buf (grown if needed, reused by
// the caller for the next record) and points them there: a record that
// outlives the decision (waiting for the kernel, or for a deferred call)
// must not alias the receiver's buffers, which the next notification
// overwrites. A nil buf allocates a fresh copy.
func (c *callView) detach(buf *[]byte) {
	strs := [...]*string{&c.paths[0], &c.paths[1], &c.resolved[0], &c.resolved[1], &c.target,
		&c.spelledSock, &c.pc.Path, &c.pc.Path2, &c.pc.Xattr, &c.pc.Addr.UnixPath}
	n := 0
	for _, p := range strs {
		n += len(*p)
	}
	var b []byte
	if buf != nil {
		b = (*buf)[:0]
	}
	if cap(b) < n {
		b = make([]byte, 0, n)
	}
	for _, p := range strs {
		start := len(b)
		b = append(b, *p...)
		*p = transient(b[start:])
	}
	if buf != nil {
		*buf = b
	}
}

// escaper writes a record's byte strings (names, targets, AF_UNIX
// addresses, xattr names), escaping those that are not UTF-8 and listing
// them in args.escaped (audit.Escape).
type escaper struct {
	keys [8]string
	n    int
}

func (e *escaper) str(d *zerolog.Event, key, s string) *zerolog.Event {
	if !audit.NeedsEscape(s) {
		return d.Str(key, s)
	}
	if e.n < len(e.keys) {
		e.keys[e.n] = key
		e.n++
	}
	return d.Str(key, audit.Escape(s))
}

func (c *callView) dict() *zerolog.Event {
	d := zerolog.Dict()
	var esc escaper
	for i := 0; i < c.nPaths; i++ {
		pk, rk, dk := audit.ArgPath, audit.ArgResolved, audit.ArgDirfd
		if i == 1 {
			pk, rk, dk = audit.ArgPath2, audit.ArgResolved2, audit.ArgDirfd2
		}
		d = esc.str(d, pk, c.paths[i])
		if c.resolved[i] != "" {
			d = esc.str(d, rk, c.resolved[i])
		}
		if c.dirfds[i] != unix.AT_FDCWD {
			d = d.Int(dk, c.dirfds[i])
		}
	}
	if c.nPaths == 0 && c.resolved[0] != "" {
		d = esc.str(d, audit.ArgResolved, c.resolved[0])
	}
	if c.target != "" {
		d = esc.str(d, audit.ArgTarget, c.target)
	}
	if c.pc.HasFlags {
		switch c.flagSet {
		case sysinfo.FlagsOpen:
			d = d.Str(audit.ArgFlags, args.FormatOpenFlags(c.pc.Flags))
		case sysinfo.FlagsClone:
			d = d.Str(audit.ArgCloneFlags, args.FormatCloneFlags(c.pc.Flags))
		}
	}
	if c.pc.Resolve != 0 {
		d = d.Str(audit.ArgResolve, args.FormatResolve(c.pc.Resolve))
	}
	if c.pc.HasAddr {
		if c.spelledSock != "" {
			spelled := c.pc.Addr
			spelled.UnixPath = c.spelledSock
			d = esc.str(d, audit.ArgAddr, formatAddr(&spelled))
			d = esc.str(d, audit.ArgResolved, "unix:"+c.pc.Addr.UnixPath)
		} else {
			d = esc.str(d, audit.ArgAddr, formatAddr(&c.pc.Addr))
		}
	}
	if c.pc.HasDev {
		d = d.Str(audit.ArgDev, formatDev(c.pc.Dev))
	}
	if c.pc.HasXattr {
		d = esc.str(d, audit.ArgXattr, c.pc.Xattr)
	}
	if c.err != 0 {
		d = d.Str(audit.ArgError, unix.ErrnoName(c.err))
	}
	if esc.n > 0 {
		d = d.Strs(audit.ArgEscaped, esc.keys[:esc.n])
	}
	return d
}

func formatAddr(a *policy.Sockaddr) string {
	switch a.Family {
	case unix.AF_INET, unix.AF_INET6:
		return netip.AddrPortFrom(a.IP, a.Port).String()
	case unix.AF_UNIX:
		if a.Abstract {
			return "unix:@" + a.UnixPath
		}
		return "unix:" + a.UnixPath
	}
	return "family:" + strconv.Itoa(int(a.Family))
}

func formatDev(d policy.Dev) string {
	k := "c"
	switch d.Kind {
	case policy.DevBlock:
		k = "b"
	case policy.DevOther:
		k = "-"
	}
	return k + " " + strconv.FormatUint(uint64(d.Major), 10) + ":" + strconv.FormatUint(uint64(d.Minor), 10)
}

// errnoName names an answer's errno for the record. ERESTARTSYS, answered
// when a signal would have interrupted the watchee's wait (whileWaiting), is
// the kernel's own and has no name in user space.
func errnoName(e unix.Errno) string {
	if e == errRestartSys {
		return "ERESTARTSYS"
	}
	if name := unix.ErrnoName(e); name != "" {
		return name
	}
	return strconv.Itoa(int(e))
}
