package observe

import (
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/args"
	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
	"github.com/vigilsec/vigil/loader"
)

// appendRecord appends c's JSON line. Field names are the audit record's
// (docs/design.md §6); level is "warn" for a phantom, "info" otherwise, as the
// zerolog lines of the rest of vigil.
//
//	{"level":"info","time":"…","pid":1,"tid":1,"comm":"cat","syscall":"openat",
//	 "args":{"path":"/etc/hostname","flags":"O_RDONLY"},"ret":3,
//	 "kernel":{"path":"/etc/hostname","dev":"254:0","ino":12},"latency_us":4.2,
//	 "phantom":false}
func (o *Observer) appendRecord(b []byte, c loader.Call, v Verdict, why string) []byte {
	f := c.Flags()
	if v == Phantom {
		b = append(b, `{"level":"warn"`...)
	} else {
		b = append(b, `{"level":"info"`...)
	}
	b = appendKey(b, audit.FieldTime)
	b = append(b, '"')
	b = o.clock.append(b, c.EnterTime())
	b = append(b, '"')
	b = appendKey(b, audit.FieldPid)
	b = strconv.AppendInt(b, int64(c.Tgid()), 10)
	b = appendKey(b, audit.FieldTid)
	b = strconv.AppendInt(b, int64(c.Tid()), 10)
	b = appendKey(b, audit.FieldComm)
	b = appendJSONString(b, c.Comm())
	b = appendKey(b, audit.FieldSyscall)
	b = appendJSONString(b, sysinfo.Name(c.Nr()))
	b = appendKey(b, audit.FieldArgs)
	b = appendArgs(b, c)
	if f.Has(loader.FlagObsHasRet) {
		b = appendKey(b, "ret")
		b = strconv.AppendInt(b, c.Ret(), 10)
		if name := errnoName(c.Ret()); name != "" {
			b = appendKey(b, audit.FieldErrno)
			b = appendJSONString(b, name)
		}
	}
	if f.Has(loader.FlagObsHasObject) || f.Has(loader.FlagObsHasPeer) {
		b = appendKey(b, audit.FieldKernel)
		b = appendKernel(b, c)
	}
	if f.Has(loader.FlagObsHasRet) && c.ExitTime() >= c.EnterTime() {
		b = appendKey(b, audit.FieldLatency)
		b = appendMicros(b, c.ExitTime()-c.EnterTime())
	}
	b = appendKey(b, "phantom")
	b = strconv.AppendBool(b, v == Phantom)
	switch v {
	case Phantom:
		b = appendKey(b, "phantom_reason")
		b = appendJSONString(b, why)
	case Unchecked:
		b = appendKey(b, "phantom_unchecked")
		b = appendJSONString(b, why)
	}
	if e := c.Errors(); e != 0 {
		b = appendKey(b, audit.ArgError)
		b = append(b, '"')
		b = e.AppendText(b)
		b = append(b, '"')
	}
	return append(b, '}', '\n')
}

// appendArgs appends the decoded arguments: the path and its dirfd, flags
// and mode for the open family and exec, the address for connect, the raw
// registers for anything else.
func appendArgs(b []byte, c loader.Call) []byte {
	b = append(b, '{')
	f := c.Flags()
	nr := c.Nr()
	switch nr {
	case unix.SYS_OPEN, unix.SYS_OPENAT, unix.SYS_OPENAT2, unix.SYS_CREAT, unix.SYS_EXECVE, unix.SYS_EXECVEAT:
		if nr == unix.SYS_OPENAT || nr == unix.SYS_OPENAT2 || nr == unix.SYS_EXECVEAT {
			if fd := int32(c.Arg(0)); fd != unix.AT_FDCWD {
				b = appendKey(b, audit.ArgDirfd)
				b = strconv.AppendInt(b, int64(fd), 10)
			}
		}
		b = appendKey(b, audit.ArgPath)
		b = appendJSONString(b, c.Path())
		if f.Has(loader.FlagObsPathTrunc) {
			b = appendKey(b, "path_truncated")
			b = append(b, "true"...)
		}
		if f.Has(loader.FlagObsPathAtExit) {
			// Unreadable at sys_enter (page not resident): what it held
			// once the kernel had copied it.
			b = appendKey(b, "path_read_at_exit")
			b = append(b, "true"...)
		}
		var flags, mode uint64
		hasFlags := true
		switch nr {
		case unix.SYS_OPEN:
			flags, mode = c.Arg(1), c.Arg(2)
		case unix.SYS_OPENAT:
			flags, mode = c.Arg(2), c.Arg(3)
		case unix.SYS_CREAT:
			flags, mode = unix.O_CREAT|unix.O_WRONLY|unix.O_TRUNC, c.Arg(1)
		case unix.SYS_OPENAT2:
			var resolve uint64
			flags, mode, resolve = c.How()
			hasFlags = f.Has(loader.FlagObsHasHow)
			if hasFlags && resolve != 0 {
				b = appendKey(b, audit.ArgResolve)
				b = append(b, '"')
				b = args.AppendResolve(b, resolve)
				b = append(b, '"')
			}
		default:
			hasFlags = false
			if nr == unix.SYS_EXECVEAT && c.Arg(4) != 0 {
				b = appendKey(b, audit.ArgFlags)
				b = strconv.AppendUint(b, uint64(uint32(c.Arg(4))), 10)
			}
		}
		if hasFlags {
			b = appendKey(b, audit.ArgFlags)
			b = append(b, '"')
			b = args.AppendOpenFlags(b, uint64(uint32(flags)))
			b = append(b, '"')
			// O_TMPFILE includes O_DIRECTORY's bit: test all of it.
			if flags&unix.O_CREAT != 0 || flags&unix.O_TMPFILE == unix.O_TMPFILE {
				b = appendKey(b, audit.ArgMode)
				b = append(b, '"', '0')
				b = strconv.AppendUint(b, mode&0o7777, 8)
				b = append(b, '"')
			}
		}
	case unix.SYS_CONNECT:
		b = appendKey(b, "fd")
		b = strconv.AppendInt(b, int64(int32(c.Arg(0))), 10)
		if f.Has(loader.FlagObsSockaddr) {
			b = appendKey(b, audit.ArgAddr)
			if sa, err := args.DecodeSockaddr(c.Path()); err == nil {
				b = appendJSONString(b, sa.String())
			} else {
				b = appendJSONString(b, "undecodable: "+err.Error())
			}
		}
	default:
		b = appendKey(b, "raw")
		b = append(b, '[')
		for i := range 6 {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, c.Arg(i), 10)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendKernel appends what the kernel used: the object's path and
// identity, or a connect's peer.
func appendKernel(b []byte, c loader.Call) []byte {
	b = append(b, '{')
	f := c.Flags()
	if f.Has(loader.FlagObsHasObject) {
		o := c.Object()
		b = appendKey(b, "path")
		b = appendJSONString(b, c.KPath())
		if f.Has(loader.FlagObsKPathTrunc) {
			b = appendKey(b, "path_truncated")
			b = append(b, "true"...)
		}
		b = appendKey(b, "dev")
		b = append(b, '"')
		b = strconv.AppendUint(b, uint64(unix.Major(o.Dev)), 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(unix.Minor(o.Dev)), 10)
		b = append(b, '"')
		b = appendKey(b, "ino")
		b = strconv.AppendUint(b, o.Ino, 10)
	}
	if f.Has(loader.FlagObsHasPeer) {
		switch fam := c.PeerFamily(); fam {
		case unix.AF_INET, unix.AF_INET6:
			b = appendKey(b, "peer")
			b = c.Peer().AppendTo(append(b, '"'))
			b = append(b, '"')
		case unix.AF_UNIX:
			b = appendKey(b, "family")
			b = append(b, `"AF_UNIX"`...)
		default:
			b = appendKey(b, "family")
			b = strconv.AppendUint(b, uint64(fam), 10)
		}
	}
	return append(b, '}')
}
