package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/sys/unix"
)

// Byte offsets of struct vigil_event (bpf/vigil.h). keep in sync with
// bpf/vigil.h; contract_test.go checks them against the bpf2go type.
const (
	offType     = 0
	offTgid     = 4
	offTid      = 8
	offNr       = 12
	offTs       = 16
	offRet      = 24
	offArgs     = 32
	offDev      = 80
	offIno      = 88
	offReason   = 96
	offFlags    = 100
	offPathLen  = 104
	offKPathLen = 106
	offChildTid = 108
	offChildNS  = 112
	offPeerFam  = 120
	offPeerPort = 122
	offPeer     = 128
	offPath     = 144
	offKPath    = offPath + EventPath

	// EventSize is the size of one ring-buffer record.
	EventSize = offKPath + EventPath
)

// ErrBadEvent is wrapped by DecodeEvent for input that is not a record the
// programs write.
var ErrBadEvent = errors.New("malformed event")

// Event is one decoded ring-buffer record.
type Event struct {
	// Type is ENTER, EXIT or VIOLATION.
	Type EventType
	// Tgid and Tid identify the calling thread (init pid namespace).
	Tgid, Tid int
	// Nr is the syscall number (-1 for a VIOLATION raised at fork).
	Nr int
	// Time is bpf_ktime_get_ns(): CLOCK_MONOTONIC nanoseconds.
	Time uint64
	// Ret is the syscall's return value (EXIT, and VIOLATION at exit).
	Ret int64
	// Args are the six syscall argument registers.
	Args [6]uint64
	// Dev and Ino identify the kernel's object when Flags has
	// FlagHasObject: the file an open returned, the executable an execve
	// runs, or the socket file an AF_UNIX peer is bound to. Dev is in the
	// userspace st_dev encoding, comparable with unix.Stat_t.Dev.
	Dev, Ino uint64
	// Reason says why a VIOLATION fired; ReasonOK otherwise.
	Reason Reason
	// Flags qualify the event.
	Flags Flags
	// Path is the path argument as user memory held it at sys_enter (at
	// most EventPath bytes; see FlagPathTrunc).
	Path string
	// KPath is the kernel's path of the object (FlagHasObject), from the
	// task's root, crossing mounts (see FlagKPathTrunc). For an AF_UNIX
	// peer without a socket file (FlagHasPeer, no FlagHasObject) it is the
	// peer's abstract name, raw, with its leading NUL byte.
	KPath string
	// PeerFamily is the family of the socket a connect used (AF_INET,
	// AF_INET6, AF_UNIX, …) when Flags has FlagHasPeer.
	PeerFamily uint16
	// Peer is that socket's peer address and port when PeerFamily is
	// AF_INET or AF_INET6; a v4-mapped IPv6 peer stays mapped. The zero
	// AddrPort otherwise.
	Peer netip.AddrPort
	// Child is the thread id (init pid namespace) of the child a clone
	// created, when Flags has FlagHasChild. A VIOLATION whose Child is its
	// own Tid is a doomed child killed at its first return to user mode.
	Child int
	// ChildNS holds the CLONE_NEW* bits of the namespaces Child does not
	// share with its parent (FlagHasChild).
	ChildNS uint64
}

// Clone returns a copy of e whose strings do not alias memory that
// ReadEvents reuses; call it to keep an event past the callback.
func (e *Event) Clone() Event {
	c := *e
	c.Path = strings.Clone(e.Path)
	c.KPath = strings.Clone(e.KPath)
	return c
}

// DecodeEvent decodes one ring-buffer record into ev. It never panics:
// input shorter than EventSize, or holding an unknown type, reason or flag,
// or a length past EventPath, yields an error wrapping ErrBadEvent. The
// strings in ev are freshly allocated.
func DecodeEvent(b []byte, ev *Event) error {
	return decodeEvent(b, ev, false)
}

// decodeEvent is DecodeEvent; with alias, ev's strings point into b
// instead of copies (see unsafeString), for the reader's hot path.
func decodeEvent(b []byte, ev *Event, alias bool) error {
	if len(b) < EventSize {
		return fmt.Errorf("decoding event of %d bytes (want %d): %w", len(b), EventSize, ErrBadEvent)
	}
	le := binary.LittleEndian
	typ := EventType(le.Uint32(b[offType:]))
	if typ < EventEnter || typ > EventViolation {
		return fmt.Errorf("decoding event: type %d: %w", uint32(typ), ErrBadEvent)
	}
	reason := Reason(le.Uint32(b[offReason:]))
	if reason > ReasonSharedFiles {
		return fmt.Errorf("decoding event: reason %d: %w", uint32(reason), ErrBadEvent)
	}
	flags := Flags(le.Uint32(b[offFlags:]))
	if flags&^flagsKnown != 0 {
		return fmt.Errorf("decoding event: flags %#x: %w", uint32(flags), ErrBadEvent)
	}
	pathLen := int(le.Uint16(b[offPathLen:]))
	kpathLen := int(le.Uint16(b[offKPathLen:]))
	if pathLen > EventPath || kpathLen > EventPath {
		return fmt.Errorf("decoding event: path lengths %d, %d: %w", pathLen, kpathLen, ErrBadEvent)
	}

	ev.Type = typ
	ev.Tgid = int(le.Uint32(b[offTgid:]))
	ev.Tid = int(le.Uint32(b[offTid:]))
	ev.Nr = int(int32(le.Uint32(b[offNr:])))
	ev.Time = le.Uint64(b[offTs:])
	ev.Ret = int64(le.Uint64(b[offRet:]))
	for i := range ev.Args {
		ev.Args[i] = le.Uint64(b[offArgs+8*i:])
	}
	ev.Dev = userDev(le.Uint64(b[offDev:]))
	ev.Ino = le.Uint64(b[offIno:])
	ev.Reason = reason
	ev.Flags = flags
	ev.PeerFamily, ev.Peer = 0, netip.AddrPort{}
	if flags.Has(FlagHasPeer) {
		ev.PeerFamily = le.Uint16(b[offPeerFam:])
		ev.Peer = decodePeer(ev.PeerFamily, le.Uint16(b[offPeerPort:]), b[offPeer:offPeer+16])
	}
	ev.Child, ev.ChildNS = 0, 0
	if flags.Has(FlagHasChild) {
		ev.Child = int(le.Uint32(b[offChildTid:]))
		ev.ChildNS = le.Uint64(b[offChildNS:])
	}
	path := b[offPath : offPath+pathLen]
	kpath := b[offKPath : offKPath+kpathLen]
	if alias {
		ev.Path = unsafeString(path)
		ev.KPath = unsafeString(kpath)
	} else {
		ev.Path = string(path)
		ev.KPath = string(kpath)
	}
	return nil
}

// decodePeer is the AddrPort of an AF_INET or AF_INET6 peer (16 bytes,
// network order), without allocating; the zero AddrPort for other families.
func decodePeer(family, port uint16, addr []byte) netip.AddrPort {
	switch family {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(addr[:4])), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(addr[:16])), port)
	}
	return netip.AddrPort{}
}

// The kernel keeps dev_t as MAJOR<<20 | MINOR (include/linux/kdev_t.h);
// stat(2) reports new_encode_dev() of it, which unix.Major/Minor/Mkdev
// decode and build.
const (
	kernelMinorBits = 20
	kernelMinorMask = 1<<kernelMinorBits - 1
	kernelMajorMax  = 1<<(32-kernelMinorBits) - 1
)

// kernelDev converts a userspace st_dev to the kernel's s_dev encoding.
func kernelDev(dev uint64) (uint64, error) {
	maj, min := uint64(unix.Major(dev)), uint64(unix.Minor(dev))
	if maj > kernelMajorMax || min > kernelMinorMask {
		return 0, fmt.Errorf("device %d:%d does not fit the kernel's dev_t", maj, min)
	}
	return maj<<kernelMinorBits | min, nil
}

// userDev converts a kernel s_dev to the userspace st_dev encoding.
func userDev(kdev uint64) uint64 {
	return unix.Mkdev(uint32(kdev>>kernelMinorBits&kernelMajorMax), uint32(kdev&kernelMinorMask))
}

// FNV-1a 64 parameters (the hash bpf/vigil.bpf.c computes).
const (
	fnvOffset = 0xcbf29ce484222325
	fnvPrime  = 0x100000001b3
)

// FNV1a is the 64-bit FNV-1a hash of b, the hash the eBPF programs compute
// over a bound argument and a created file's name.
func FNV1a(b []byte) uint64 {
	h := uint64(fnvOffset)
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// fnv1aString is FNV1a over the bytes of s, without converting it.
func fnv1aString(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}
