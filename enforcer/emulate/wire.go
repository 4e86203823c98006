package emulate

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The supervisor and its workers exchange one SOCK_SEQPACKET message per
// request and per response: a fixed little-endian encoding of the structs
// below, with descriptors in SCM_RIGHTS. Both ends are the same binary, so
// there is no versioning; the decoder still checks every length, because a
// worker lives in the watchee's namespaces and its replies are data to vet.

// maxMessage bounds one message: three paths (PATH_MAX each), an xattr value
// (XATTR_SIZE_MAX) and the fixed fields.
const maxMessage = 3*4096 + 65536 + 1024

// maxFds is the most descriptors one message carries: a bind with lent
// mounts has five (root, socket, parent, mount clone, procfs).
const maxFds = 5

// op is what a request asks the worker to do.
type op uint8

const (
	opPrepare     op = iota + 1 // resolve a path: parent directory or object
	opPrepareOpen               // resolve an open's target (phase A)
	opOpen                      // open a prepared target (phase B)
	opMknod
	opMkdir
	opUnlink
	opRename
	opLink
	opSymlink
	opChmod
	opChown
	opTruncate
	opSetxattr
	opRemovexattr
	opAccess // faccessat2(AT_EACCESS) on an object: a lend's precondition
	opBind   // bind(2) on the watchee's socket (obj), in the held parent for an AF_UNIX path
)

// Fd roles: a message's descriptors are sent in this order, each present
// when its bit is set in the fd mask.
const (
	fdRoot    = 1 << iota // request: the watchee's root directory
	fdBase                // request: its cwd or dirfd
	fdObj                 // request: object (O_PATH or the watchee's own file); response: object
	fdParent              // request: parent directory; response: parent directory
	fdObj2                // request: second object (link source)
	fdParent2             // request: second parent (rename/link destination)
	fdOpen                // response: an opened file for the watchee
)

// wireCred is the part of the watchee's credentials an executor takes on per
// request, with ids as seen in the executor's user namespace. A worker's
// supplementary groups are fixed when it starts (see nsenter.c); only vigil's
// local thread takes Groups per request, so they are never encoded.
type wireCred struct {
	Fsuid, Fsgid uint32
	Umask        uint32
	CapEff       uint64
	Groups       []int
	SetGroups    bool
}

// request is one operation for a worker.
type request struct {
	Op      op
	Lookup  Lookup // opPrepare
	Flags   uint64 // open flags, AT_* flags, rename or xattr flags, access mode
	Mode    uint64
	Resolve uint64
	Dev     uint64
	Uid     int64
	Gid     int64
	Length  int64
	Cred    wireCred
	Path    string // path to resolve, or the name in the parent
	Name2   string // second name (rename/link destination)
	Str     string // symlink target or xattr name
	Value   []byte // xattr value, or bind's sockaddr
	FdMask  uint32
	// Unnamed asks opPrepareOpen for no Path: the caller judged the object
	// already and compares identities, so the readlink is saved.
	Unnamed bool
}

// status says how a worker's response is to be read.
type status uint8

const (
	statusOK          status = iota // the call ran; Errno is its result (0 on success)
	statusUnsupported               // the call cannot be emulated faithfully (Msg says why); nothing happened
	statusInternal                  // the worker failed (Msg); nothing happened
	statusRaced                     // the prepared object changed before the call; nothing happened
)

// response is a worker's answer.
type response struct {
	Status status
	Errno  int32
	Val    int64
	Exists bool
	FdMask uint32
	Path   string // resolved path in the watchee's view
	Name   string // final name in the returned parent
	Msg    string
}

var errShort = errors.New("message truncated")

type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *encoder) bytes(v []byte) {
	e.u32(uint32(len(v)))
	e.b = append(e.b, v...)
}
func (e *encoder) str(v string) {
	e.u32(uint32(len(v)))
	e.b = append(e.b, v...)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = errShort
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() uint8 {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) bytes() []byte {
	n := d.u32()
	if n > maxMessage {
		d.err = fmt.Errorf("field of %d bytes exceeds the message limit", n)
		return nil
	}
	v := d.take(int(n))
	if v == nil {
		return nil
	}
	return append([]byte(nil), v...)
}

func (d *decoder) str() string {
	n := d.u32()
	if n > maxMessage {
		d.err = fmt.Errorf("field of %d bytes exceeds the message limit", n)
		return ""
	}
	return string(d.take(int(n)))
}

func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	return d.err
}

func (r *request) encode(b []byte) []byte {
	e := encoder{b: b[:0]}
	e.u8(uint8(r.Op))
	e.u8(uint8(r.Lookup))
	e.u64(r.Flags)
	e.u64(r.Mode)
	e.u64(r.Resolve)
	e.u64(r.Dev)
	e.u64(uint64(r.Uid))
	e.u64(uint64(r.Gid))
	e.u64(uint64(r.Length))
	e.u32(r.Cred.Fsuid)
	e.u32(r.Cred.Fsgid)
	e.u32(r.Cred.Umask)
	e.u64(r.Cred.CapEff)
	e.str(r.Path)
	e.str(r.Name2)
	e.str(r.Str)
	e.bytes(r.Value)
	e.u32(r.FdMask)
	var unnamed uint8
	if r.Unnamed {
		unnamed = 1
	}
	e.u8(unnamed)
	return e.b
}

func (r *request) decode(b []byte) error {
	d := decoder{b: b}
	r.Op = op(d.u8())
	r.Lookup = Lookup(d.u8())
	r.Flags = d.u64()
	r.Mode = d.u64()
	r.Resolve = d.u64()
	r.Dev = d.u64()
	r.Uid = int64(d.u64())
	r.Gid = int64(d.u64())
	r.Length = int64(d.u64())
	r.Cred.Fsuid = d.u32()
	r.Cred.Fsgid = d.u32()
	r.Cred.Umask = d.u32()
	r.Cred.CapEff = d.u64()
	r.Path = d.str()
	r.Name2 = d.str()
	r.Str = d.str()
	r.Value = d.bytes()
	r.FdMask = d.u32()
	switch d.u8() {
	case 0:
	case 1:
		r.Unnamed = true
	default:
		return errors.New("decoding request: Unnamed is neither 0 nor 1")
	}
	if err := d.done(); err != nil {
		return fmt.Errorf("decoding request: %w", err)
	}
	return nil
}

func (r *response) encode(b []byte) []byte {
	e := encoder{b: b[:0]}
	e.u8(uint8(r.Status))
	e.u32(uint32(r.Errno))
	e.u64(uint64(r.Val))
	if r.Exists {
		e.u8(1)
	} else {
		e.u8(0)
	}
	e.u32(r.FdMask)
	e.str(r.Path)
	e.str(r.Name)
	e.str(r.Msg)
	return e.b
}

func (r *response) decode(b []byte) error {
	d := decoder{b: b}
	r.Status = status(d.u8())
	r.Errno = int32(d.u32())
	r.Val = int64(d.u64())
	r.Exists = d.u8() != 0
	r.FdMask = d.u32()
	r.Path = d.str()
	r.Name = d.str()
	r.Msg = d.str()
	if err := d.done(); err != nil {
		return fmt.Errorf("decoding response: %w", err)
	}
	if r.Status > statusRaced {
		return fmt.Errorf("decoding response: unknown status %d", r.Status)
	}
	return nil
}

// fdCount returns how many descriptors a mask announces.
func fdCount(mask uint32) int {
	n := 0
	for ; mask != 0; mask &= mask - 1 {
		n++
	}
	return n
}
