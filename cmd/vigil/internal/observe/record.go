package observe

import (
	"strconv"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/args"
	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
	"github.com/vigilsec/vigil/loader"
)

// appendRecord appends c's JSON line: an audit.Record, whose fields it shares
// with the supervisor's records (docs/design.md §6) and whose Observed part
// is observe's own; level is "warn" for a phantom, "info" otherwise, as the
// zerolog lines of the rest of vigil.
//
//	{"level":"info","time":"…","pid":1,"tid":1,"comm":"cat","syscall":"openat",
//	 "args":{"path":"/etc/hostname","flags":"O_RDONLY"},"ret":3,
//	 "kernel":{"path":"/etc/hostname","dev":"254:0","ino":12},"latency_us":4.2,
//	 "phantom":false}
func (o *Observer) appendRecord(b []byte, c loader.Call, v Verdict, why string) []byte {
	f := c.Flags()
	if v == Phantom {
		b = append(b, `{"`+audit.FieldLevel+`":"warn"`...)
	} else {
		b = append(b, `{"`+audit.FieldLevel+`":"info"`...)
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
	b = appendMarked(b, c.Comm(), audit.FieldCommEscaped)
	b = appendKey(b, audit.FieldSyscall)
	b = appendJSONString(b, sysinfo.Name(c.Nr()))
	b = appendKey(b, audit.FieldArgs)
	b = appendArgs(b, c)
	if f.Has(loader.FlagObsHasRet) {
		b = appendKey(b, audit.FieldRet)
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
	b = appendKey(b, audit.FieldPhantom)
	b = strconv.AppendBool(b, v == Phantom)
	switch v {
	case Phantom:
		b = appendKey(b, audit.FieldPhantomReason)
		b = appendJSONString(b, why)
	case Unchecked:
		b = appendKey(b, audit.FieldPhantomUnchecked)
		b = appendJSONString(b, why)
	}
	if e := c.Errors(); e != 0 {
		b = appendKey(b, audit.FieldCaptureError)
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
	switch c.Nr() {
	case unix.SYS_OPEN, unix.SYS_OPENAT, unix.SYS_OPENAT2, unix.SYS_CREAT, unix.SYS_EXECVE, unix.SYS_EXECVEAT:
		b = appendPathArgs(b, c)
	case unix.SYS_CONNECT:
		b = appendConnectArgs(b, c)
	default:
		b = appendKey(b, audit.ArgRaw)
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

// appendPathArgs appends the arguments of the open family and exec: the
// dirfd, the path as user memory held it, and the flags, resolve and mode.
func appendPathArgs(b []byte, c loader.Call) []byte {
	f, nr := c.Flags(), c.Nr()
	if nr == unix.SYS_OPENAT || nr == unix.SYS_OPENAT2 || nr == unix.SYS_EXECVEAT {
		if fd := int32(c.Arg(0)); fd != unix.AT_FDCWD {
			b = appendKey(b, audit.ArgDirfd)
			b = strconv.AppendInt(b, int64(fd), 10)
		}
	}
	b = appendKey(b, audit.ArgPath)
	b = appendEscapable(b, audit.ArgPath, c.Path())
	if f.Has(loader.FlagObsPathTrunc) {
		b = appendKey(b, audit.ArgPathTruncated)
		b = append(b, "true"...)
	}
	if f.Has(loader.FlagObsPathAtExit) {
		// Unreadable at sys_enter (page not resident): what it held
		// once the kernel had copied it.
		b = appendKey(b, audit.ArgPathReadAtExit)
		b = append(b, "true"...)
	}
	var flags, mode uint64
	switch nr {
	case unix.SYS_OPEN:
		flags, mode = c.Arg(1), c.Arg(2)
	case unix.SYS_OPENAT:
		flags, mode = c.Arg(2), c.Arg(3)
	case unix.SYS_CREAT:
		flags, mode = unix.O_CREAT|unix.O_WRONLY|unix.O_TRUNC, c.Arg(1)
	case unix.SYS_OPENAT2:
		if !f.Has(loader.FlagObsHasHow) {
			return b
		}
		var resolve uint64
		flags, mode, resolve = c.How()
		if resolve != 0 {
			b = appendKey(b, audit.ArgResolve)
			b = append(b, '"')
			b = args.AppendResolve(b, resolve)
			b = append(b, '"')
		}
	case unix.SYS_EXECVEAT:
		if at := c.Arg(4); at != 0 {
			b = appendKey(b, audit.ArgFlags)
			b = append(b, '"')
			b = appendAtFlags(b, uint64(uint32(at)))
			b = append(b, '"')
		}
		return b
	default:
		return b
	}
	return appendOpenFlags(b, flags, mode)
}

// appendOpenFlags appends an open's flags, and its mode when the call
// creates a file.
func appendOpenFlags(b []byte, flags, mode uint64) []byte {
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
	return b
}

// appendAtFlags appends execveat's flags by name, as the records write
// every flag word: AT_* names joined by '|', then any other bits in hex.
func appendAtFlags(b []byte, f uint64) []byte {
	sep := false
	for _, n := range [...]struct {
		bit  uint64
		name string
	}{{unix.AT_SYMLINK_NOFOLLOW, "AT_SYMLINK_NOFOLLOW"}, {unix.AT_EMPTY_PATH, "AT_EMPTY_PATH"}} {
		if f&n.bit != 0 {
			if sep {
				b = append(b, '|')
			}
			b, sep, f = append(b, n.name...), true, f&^n.bit
		}
	}
	if f != 0 {
		if sep {
			b = append(b, '|')
		}
		b = append(b, '0', 'x')
		b = strconv.AppendUint(b, f, 16)
	}
	return b
}

// appendConnectArgs appends connect's socket and the address user memory
// held.
func appendConnectArgs(b []byte, c loader.Call) []byte {
	b = appendKey(b, audit.ArgFd)
	b = strconv.AppendInt(b, int64(int32(c.Arg(0))), 10)
	if c.Flags().Has(loader.FlagObsSockaddr) {
		b = appendKey(b, audit.ArgAddr)
		if sa, err := args.DecodeSockaddr(c.Path()); err == nil {
			b = appendEscapable(b, audit.ArgAddr, sa.String())
		} else {
			b = appendJSONString(b, "undecodable: "+err.Error())
		}
	}
	return b
}

// appendKernel appends what the kernel used: the object's path and
// identity, or a connect's peer.
func appendKernel(b []byte, c loader.Call) []byte {
	b = append(b, '{')
	f := c.Flags()
	if f.Has(loader.FlagObsHasObject) {
		o := c.Object()
		b = appendKey(b, audit.KernelPath)
		b = appendMarked(b, c.KPath(), audit.KernelPathEscaped)
		if f.Has(loader.FlagObsKPathTrunc) {
			b = appendKey(b, audit.KernelPathTruncated)
			b = append(b, "true"...)
		}
		b = appendKey(b, audit.KernelDev)
		b = append(b, '"')
		b = strconv.AppendUint(b, uint64(unix.Major(o.Dev)), 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(unix.Minor(o.Dev)), 10)
		b = append(b, '"')
		b = appendKey(b, audit.KernelIno)
		b = strconv.AppendUint(b, o.Ino, 10)
	}
	if f.Has(loader.FlagObsHasPeer) {
		switch fam := c.PeerFamily(); fam {
		case unix.AF_INET, unix.AF_INET6:
			b = appendKey(b, audit.KernelPeer)
			b = c.Peer().AppendTo(append(b, '"'))
			b = append(b, '"')
		case unix.AF_UNIX:
			b = appendKey(b, audit.KernelFamily)
			b = append(b, `"AF_UNIX"`...)
		default:
			// A string like AF_UNIX's: the family's number.
			b = appendKey(b, audit.KernelFamily)
			b = append(b, '"')
			b = strconv.AppendUint(b, uint64(fam), 10)
			b = append(b, '"')
		}
	}
	return append(b, '}')
}

// appendEscapable appends the value s of args' key just appended, escaped
// and listed in args.escaped when its bytes are not UTF-8 (audit.Escape).
func appendEscapable[T string | []byte](b []byte, key string, s T) []byte {
	if validUTF8(s) {
		return appendJSONString(b, s)
	}
	b = appendJSONString(b, audit.Escape(string(s)))
	b = appendKey(b, audit.ArgEscaped)
	return append(b, `["`+key+`"]`...)
}

// appendMarked appends the value s of the key just appended, escaped and
// followed by "marker":true when its bytes are not UTF-8 (audit.Escape).
func appendMarked[T string | []byte](b []byte, s T, marker string) []byte {
	if validUTF8(s) {
		return appendJSONString(b, s)
	}
	b = appendJSONString(b, audit.Escape(string(s)))
	b = appendKey(b, marker)
	return append(b, "true"...)
}

func validUTF8[T string | []byte](s T) bool {
	switch v := any(s).(type) {
	case string:
		return utf8.ValidString(v)
	case []byte:
		return utf8.Valid(v)
	}
	return false
}
