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
	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

// record writes the audit record of one decision (DESIGN.md §6). Plain allows
// are Debug, log rules Info, denials Warn, kills Error.
func (s *Supervisor) record(n *notify.Notif, pi procInfo, o *outcome, gone bool, lat time.Duration) {
	c := &s.c
	action := o.dec.Action
	if o.errno != 0 {
		action = policy.ActionDeny
	}
	var ev *zerolog.Event
	switch {
	case c.err != 0 && o.dec.Rule == nil:
		// vigil answered with the kernel's own errno for arguments it could
		// not vet (a missing file, a bad pointer): no policy refused it.
		ev = s.audit.Debug()
	case action == policy.ActionAllow:
		ev = s.audit.Debug()
	case action == policy.ActionLog:
		ev = s.audit.Info()
	case action == policy.ActionKill:
		ev = s.audit.Error()
	default:
		ev = s.audit.Warn()
	}
	if ev == nil {
		return
	}
	ev = ev.Int(audit.FieldPid, pi.tgid).
		Int(audit.FieldTid, int(n.Pid)).
		Str(audit.FieldComm, pi.comm).
		Str(audit.FieldSyscall, sysinfo.Name(int(n.Data.Nr)))
	if s.cfg.Container != "" {
		ev = ev.Str(audit.FieldContainer, s.cfg.Container)
	}
	if c.sc != nil {
		ev = ev.Dict(audit.FieldArgs, s.argsDict(c))
	}
	rule := ruleName(o.dec.Rule)
	if c.err != 0 {
		// Decided before any rule was consulted.
		rule = ""
	}
	ev = ev.Str(audit.FieldRule, rule).
		Str(audit.FieldAction, action.String())
	if o.errno != 0 {
		ev = ev.Str(audit.FieldErrno, unix.ErrnoName(o.errno))
	}
	ev = ev.Bool(audit.FieldEmulated, false)
	if v := o.grant.Verified(); v != "" && o.errno == 0 && action != policy.ActionKill {
		ev = ev.Str(audit.FieldVerified, v)
	}
	if gone {
		ev = ev.Bool("withdrawn", true)
	}
	ev.Float64(audit.FieldLatency, float64(lat.Nanoseconds())/1e3).Send()
}

func (s *Supervisor) argsDict(c *call) *zerolog.Event {
	d := zerolog.Dict()
	for i := 0; i < c.nPaths; i++ {
		pk, rk := audit.ArgPath, audit.ArgResolved
		if i == 1 {
			pk, rk = audit.ArgPath2, audit.ArgResolved2
		}
		d = d.Str(pk, c.paths[i])
		if c.objs[i].Path != "" {
			d = d.Str(rk, c.objs[i].Path)
		}
		if c.dirfds[i] != unix.AT_FDCWD {
			d = d.Int(audit.ArgDirfd, c.dirfds[i])
		}
	}
	if c.nPaths == 0 && c.objs[0].Path != "" {
		d = d.Str(audit.ArgResolved, c.objs[0].Path)
	}
	if c.target != "" {
		d = d.Str(audit.ArgTarget, c.target)
	}
	if c.pc.HasFlags {
		switch c.sc.Flags {
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
		d = d.Str(audit.ArgAddr, formatAddr(&c.pc.Addr))
	}
	if c.pc.HasDev {
		d = d.Str(audit.ArgDev, formatDev(c.pc.Dev))
	}
	if c.pc.HasXattr {
		d = d.Str(audit.ArgXattr, c.pc.Xattr)
	}
	if c.err != 0 {
		d = d.Str(audit.ArgError, unix.ErrnoName(c.err))
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
