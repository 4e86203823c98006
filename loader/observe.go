package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// ErrObserveNeedsNewerKernel: the observe programs read kernel structs with
// the bpf_rdonly_cast kfunc, which Linux 6.2 added; vigil run's binding
// does not need it. It wraps ErrNotSupported.
var ErrObserveNeedsNewerKernel = fmt.Errorf("%w: vigil observe needs Linux 6.2 or later (the bpf_rdonly_cast kfunc)", ErrNotSupported)

// DefaultObserveBufferSize is the observer's ring buffer size when
// ObserverOptions.RingBufferSize is 0: at about 300 bytes a record it holds
// some 50,000 calls, a few hundred milliseconds of a busy watchee.
const DefaultObserveBufferSize = 16 << 20

// ObserverOptions configure LoadObserver.
type ObserverOptions struct {
	// Syscalls lists the syscall numbers (0..ObsSyscallNr-1) observed; the
	// programs return at once for every other number, before any copy.
	Syscalls []int
	// RingBufferSize is the ring buffer's size in bytes: a power of two,
	// a multiple of the page size, at most 1 GiB. 0 means
	// DefaultObserveBufferSize.
	RingBufferSize int
	// Log receives diagnostics (dropped records at warn); the zero Logger
	// discards them.
	Log zerolog.Logger
}

// Observer holds the observe programs (bpf/observe.bpf.c) and their ring
// buffer reader. Its methods are safe for concurrent use, except that
// ReadEvents must have one caller at a time.
type Observer struct {
	log   zerolog.Logger
	objs  observeObjects
	links []link.Link
	ring  *obsRing
	size  int

	syncReq chan chan struct{}
	skipped atomic.Uint64
	// lost warns once about each increase of the lost-record counter.
	lost LostEvents

	closeOnce sync.Once
	closeErr  error
}

// ObsCounters are the programs' drop counters, summed over CPUs.
type ObsCounters struct {
	// Lost counts records dropped because the ring buffer was full.
	Lost uint64
	// NoStorage counts calls not observed because the kernel had no
	// memory for the thread's per-task state.
	NoStorage uint64
	// Untracked counts children of watched processes the watched set had
	// no room for (their calls are not observed).
	Untracked uint64
}

// LoadObserver loads the observe programs and attaches them to the
// sys_enter, sys_exit, sched_process_exec, sched_process_fork and
// sched_process_exit tracepoints (BTF-enabled raw tracepoints). vigil's
// own process is never watched. An error that means "not possible here"
// (EPERM, lockdown, a missing feature) wraps ErrNotSupported.
func LoadObserver(opts ObserverOptions) (*Observer, error) {
	var mask [ObsSyscallNr / 64]uint64
	for _, nr := range opts.Syscalls {
		if nr < 0 || nr >= ObsSyscallNr {
			return nil, fmt.Errorf("observing syscall %d: out of range 0..%d", nr, ObsSyscallNr-1)
		}
		mask[nr/64] |= 1 << (nr % 64)
	}
	size := opts.RingBufferSize
	if size == 0 {
		size = DefaultObserveBufferSize
	}
	if err := CheckBufferSize(size); err != nil {
		return nil, err
	}
	if runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("loading observe programs: %w: they read x86_64 registers and syscall numbers, this is %s", ErrNotSupported, runtime.GOARCH)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, classify("raising RLIMIT_MEMLOCK", err)
	}
	spec, err := loadObserve()
	if err != nil {
		return nil, fmt.Errorf("reading embedded observe object: %w", err)
	}
	if err := spec.Variables[observeVarSyscallMask].Set(mask); err != nil {
		return nil, fmt.Errorf("setting syscall_mask: %w", err)
	}
	if err := spec.Variables[observeVarSelfTgid].Set(uint32(os.Getpid())); err != nil {
		return nil, fmt.Errorf("setting self_tgid: %w", err)
	}
	if err := spec.Variables[observeVarWakeupBytes].Set(uint64(size / obsWakeupFraction)); err != nil {
		return nil, fmt.Errorf("setting wakeup_bytes: %w", err)
	}
	spec.Maps[observeMapEvents].MaxEntries = uint32(size)

	o := &Observer{log: opts.Log, size: size, syncReq: make(chan chan struct{}, 16)}
	if err := spec.LoadAndAssign(&o.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			o.log.Debug().Str("verifier", fmt.Sprintf("%+v", ve)).Msg("eBPF verifier rejected the observe programs")
		}
		if strings.Contains(err.Error(), `kfunc "bpf_rdonly_cast"`) {
			return nil, fmt.Errorf("loading observe programs: %w: %w", ErrObserveNeedsNewerKernel, err)
		}
		return nil, classify("loading observe programs", err)
	}
	// fork/exit first, so that the watched set follows the process tree
	// before any call is recorded; exec before sys_exit expects its check.
	for _, p := range []*ebpf.Program{o.objs.ObsFork, o.objs.ObsExit, o.objs.ObsExec, o.objs.ObsSysEnter, o.objs.ObsSysExit} {
		lk, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			o.Close()
			return nil, classify("attaching "+p.String(), err)
		}
		o.links = append(o.links, lk)
	}
	o.ring, err = newObsRing(o.objs.Events.FD(), size)
	if err != nil {
		o.Close()
		return nil, classify("opening ring buffer reader", err)
	}
	o.log.Debug().Int("ring_buffer", size).Int("syscalls", len(opts.Syscalls)).Msg("observe programs loaded")
	return o, nil
}

// CheckBufferSize reports whether size can be a ring buffer's size: a power
// of two, a multiple of the page size, at most 1 GiB.
func CheckBufferSize(size int) error {
	if size < os.Getpagesize() || size > 1<<30 || size&(size-1) != 0 || size%os.Getpagesize() != 0 {
		return fmt.Errorf("sizing ring buffer: %d is not a power of two multiple of the page size (%d) up to 1 GiB", size, os.Getpagesize())
	}
	return nil
}

// BufferSize returns the ring buffer's size in bytes.
func (o *Observer) BufferSize() int { return o.size }

// Close detaches the programs and frees the maps, in the reverse order of
// LoadObserver. A ReadEvents in progress returns nil. Close is idempotent.
func (o *Observer) Close() error {
	o.closeOnce.Do(func() {
		var errs []error
		if r := o.ring; r != nil {
			// Stop a ReadEvents in progress, and wait for it to let go of
			// the mapped ring before unmapping it.
			r.closed.Store(true)
			r.wake()
			r.mu.Lock()
			r.unmap()
			r.mu.Unlock()
		}
		for i := len(o.links) - 1; i >= 0; i-- {
			if err := o.links[i].Close(); err != nil {
				errs = append(errs, fmt.Errorf("detaching program: %w", err))
			}
		}
		if err := o.objs.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing eBPF objects: %w", err))
		}
		o.closeErr = errors.Join(errs...)
	})
	return o.closeErr
}

// Watch adds the thread group tgid to the watched set; its future children
// are added by the fork program.
func (o *Observer) Watch(tgid int) error {
	if tgid <= 0 || tgid == os.Getpid() {
		return fmt.Errorf("watching %d: not a watchable process", tgid)
	}
	key, one := uint32(tgid), uint8(1)
	if err := o.objs.Watched.Update(&key, &one, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("watching %d: %w", tgid, err)
	}
	return nil
}

// Watched reports whether tgid is in the watched set.
func (o *Observer) Watched(tgid int) (bool, error) {
	key := uint32(tgid)
	var v uint8
	if err := o.objs.Watched.Lookup(&key, &v); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("looking up watched %d: %w", tgid, err)
	}
	return true, nil
}

// Counters returns the programs' drop counters since LoadObserver.
func (o *Observer) Counters() (ObsCounters, error) {
	var key uint32
	var perCPU []observeObsCounters
	if err := o.objs.Counters.Lookup(&key, &perCPU); err != nil {
		return ObsCounters{}, fmt.Errorf("reading observe counters: %w", err)
	}
	var c ObsCounters
	for _, v := range perCPU {
		c.Lost += v.Lost
		c.NoStorage += v.NoStorage
		c.Untracked += v.Untracked
	}
	return c, nil
}

// Lost returns how many records were dropped because the ring buffer was
// full, since LoadObserver.
func (o *Observer) Lost() (uint64, error) {
	c, err := o.Counters()
	return c.Lost, err
}

// Records wake the reader only once 1/obsWakeupFraction of the ring buffer
// is pending (see submit in bpf/observe.bpf.c); ReadEvents polls every
// ObservePollInterval for a quiet tail.
const obsWakeupFraction = 64

// ObservePollInterval bounds how long a record can wait in the ring buffer
// before ReadEvents delivers it, when few are pending.
const ObservePollInterval = 50 * time.Millisecond

// ReadEvents blocks reading the ring buffer and calls fn with each record
// until Close (then it returns nil) or a read error. The Call is valid only
// during fn: it is a view of the ring buffer itself, decoded field by field
// on demand, and its room is handed back to the programs after fn returns.
// caughtUp is called after fn got the last record the ring buffer holds for
// now: the place to flush whatever fn batches. Records that do not parse
// are logged and counted (Skipped); drops counted by the programs are
// logged at warn about once a second.
func (o *Observer) ReadEvents(fn func(c Call), caughtUp func()) error {
	r := o.ring
	r.mu.Lock()
	defer r.mu.Unlock()
	var (
		pending   []chan struct{}
		lastCheck = time.Now()
	)
	defer func() {
		for _, ch := range pending {
			close(ch)
		}
	}()
	handle := func(b []byte) {
		c, err := ParseCall(b)
		if err != nil {
			o.skipped.Add(1)
			o.log.Error().Err(err).Msg("skipping undecodable observe record")
			return
		}
		fn(c)
	}
	for !r.closed.Load() {
		n, busy, err := r.drain(handle)
		if err != nil {
			return fmt.Errorf("reading ring buffer: %w", err)
		}
		if n > 0 {
			caughtUp()
		}
		// Caught up: answer the Sync calls made before now once nothing
		// is pending (reserved but uncommitted records count as pending).
		for more := true; more; {
			select {
			case ch := <-o.syncReq:
				pending = append(pending, ch)
			default:
				more = false
			}
		}
		if len(pending) > 0 && !busy && r.available() == 0 {
			for _, ch := range pending {
				close(ch)
			}
			pending = pending[:0]
		}
		if now := time.Now(); now.Sub(lastCheck) >= time.Second {
			lastCheck = now
			if c, err := o.Counters(); err == nil {
				o.lost.Note(&o.log, c.Lost)
			}
		}
		timeout := ObservePollInterval
		if busy {
			// A record is being written on another CPU: it takes
			// microseconds.
			timeout = time.Millisecond
		}
		if err := r.wait(timeout); err != nil {
			return err
		}
	}
	return nil
}

// Skipped returns how many records ReadEvents could not parse.
func (o *Observer) Skipped() uint64 { return o.skipped.Load() }

// Sync returns once every record committed before the call has been passed
// to ReadEvents' callback, or with an error after timeout. Call it after the
// watched processes are gone, before Close, so that no record is cut off.
func (o *Observer) Sync(timeout time.Duration) error {
	ch := make(chan struct{})
	select {
	case o.syncReq <- ch:
	case <-time.After(timeout):
		return errors.New("syncing with the ring buffer reader: request not taken")
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		if o.ring.closed.Load() {
			return errors.New("syncing with the ring buffer reader: closed")
		}
		// Wake the reader now rather than at its next poll.
		o.ring.wake()
		select {
		case <-ch:
			return nil
		case <-t.C:
			return fmt.Errorf("syncing with the ring buffer reader: still behind after %v", timeout)
		case <-time.After(ObservePollInterval):
		}
	}
}

// ErrBadCall is wrapped by ParseCall for input that is not a record the
// observe programs write.
var ErrBadCall = errors.New("malformed observe record")

// Call is one observed syscall: a view of one ring-buffer record whose
// fields are decoded on demand. It aliases the reader's buffer, so it is
// valid only during the ReadEvents callback.
type Call struct{ b []byte }

// ParseCall checks that b is a well-formed record and returns a view of it.
// It never panics: a short record, lengths that do not add up, unknown
// flags, errors or start kind yield an error wrapping ErrBadCall.
func ParseCall(b []byte) (Call, error) {
	if len(b) < ObsHeaderSize {
		return Call{}, fmt.Errorf("parsing observe record of %d bytes (header is %d): %w", len(b), ObsHeaderSize, ErrBadCall)
	}
	le := binary.LittleEndian
	pl, kl, sl := int(le.Uint16(b[obsOffPathLen:])), int(le.Uint16(b[obsOffKPathLen:])), int(le.Uint16(b[obsOffSPathLen:]))
	if pl >= ObsPathMax || kl >= ObsPathMax || sl >= ObsPathMax || ObsHeaderSize+pl+kl+sl != len(b) {
		return Call{}, fmt.Errorf("parsing observe record of %d bytes: path lengths %d+%d+%d: %w", len(b), pl, kl, sl, ErrBadCall)
	}
	if f := ObsFlags(le.Uint32(b[obsOffFlags:])); f&^obsFlagsKnown != 0 {
		return Call{}, fmt.Errorf("parsing observe record: flags %#x: %w", uint32(f), ErrBadCall)
	} else if f.Has(FlagObsStartFound) && int(le.Uint16(b[obsOffStartOff:])) > kl {
		return Call{}, fmt.Errorf("parsing observe record: start offset %d past kernel path of %d: %w", le.Uint16(b[obsOffStartOff:]), kl, ErrBadCall)
	}
	if e := ObsErrors(le.Uint32(b[obsOffErrors:])); e&^obsErrorsKnown != 0 {
		return Call{}, fmt.Errorf("parsing observe record: errors %#x: %w", uint32(e), ErrBadCall)
	}
	if k := StartKind(b[obsOffStartKind]); k > startKindMax {
		return Call{}, fmt.Errorf("parsing observe record: start kind %d: %w", k, ErrBadCall)
	}
	return Call{b: b}, nil
}

// Valid reports whether c holds a record (the zero Call does not).
func (c Call) Valid() bool { return len(c.b) >= ObsHeaderSize }

func (c Call) u16(off int) uint16 { return binary.LittleEndian.Uint16(c.b[off:]) }
func (c Call) u32(off int) uint32 { return binary.LittleEndian.Uint32(c.b[off:]) }
func (c Call) u64(off int) uint64 { return binary.LittleEndian.Uint64(c.b[off:]) }

// Nr is the syscall number.
func (c Call) Nr() int { return int(c.u32(obsOffNr)) }

// Tgid is the calling process (init pid namespace).
func (c Call) Tgid() int { return int(c.u32(obsOffTgid)) }

// Tid is the calling thread (init pid namespace).
func (c Call) Tid() int { return int(c.u32(obsOffTid)) }

// Comm is the thread's comm at sys_enter.
func (c Call) Comm() []byte {
	b := c.b[obsOffComm : obsOffComm+16]
	for i, x := range b {
		if x == 0 {
			return b[:i]
		}
	}
	return b
}

// EnterTime is bpf_ktime_get_ns() at sys_enter: CLOCK_MONOTONIC nanoseconds.
func (c Call) EnterTime() uint64 { return c.u64(obsOffTsEnter) }

// ExitTime is the same clock at sys_exit (FlagObsHasRet).
func (c Call) ExitTime() uint64 { return c.u64(obsOffTsExit) }

// Ret is the return value (FlagObsHasRet).
func (c Call) Ret() int64 { return int64(c.u64(obsOffRet)) }

// Arg returns argument register i (0..5) at sys_enter.
func (c Call) Arg(i int) uint64 { return c.u64(obsOffArgs + 8*(i&7)) }

// Flags qualify the call.
func (c Call) Flags() ObsFlags { return ObsFlags(c.u32(obsOffFlags)) }

// Errors say which parts could not be read.
func (c Call) Errors() ObsErrors { return ObsErrors(c.u32(obsOffErrors)) }

// Path is the path argument (FlagObsHasPath) or connect's sockaddr
// (FlagObsSockaddr) as user memory held it at sys_enter.
func (c Call) Path() []byte {
	return c.b[ObsHeaderSize : ObsHeaderSize+int(c.u16(obsOffPathLen))]
}

// KPath is the kernel's path of the object (FlagObsHasObject) from the
// task's root, crossing mounts; see FlagObsKPathTrunc.
func (c Call) KPath() []byte {
	p := ObsHeaderSize + int(c.u16(obsOffPathLen))
	return c.b[p : p+int(c.u16(obsOffKPathLen))]
}

// SPath is the kernel's path of a relative lookup's start object
// (FlagObsStartPath).
func (c Call) SPath() []byte {
	p := ObsHeaderSize + int(c.u16(obsOffPathLen)) + int(c.u16(obsOffKPathLen))
	return c.b[p : p+int(c.u16(obsOffSPathLen))]
}

// StartOff is where, in KPath, the part below the lookup's start object
// begins (FlagObsStartFound).
func (c Call) StartOff() int { return int(c.u16(obsOffStartOff)) }

// StartKind says what the lookup started from.
func (c Call) StartKind() StartKind { return StartKind(c.b[obsOffStartKind]) }

// ObjectIdent identifies a file or directory the way statx does: Dev in the
// userspace st_dev encoding, Ino, and the mount id (STATX_MNT_ID).
type ObjectIdent struct {
	Dev, Ino uint64
	MntID    uint32
}

func (c Call) ident(off int) ObjectIdent {
	return ObjectIdent{
		Dev:   userDev(c.u64(off + obsIdentDev)),
		Ino:   c.u64(off + obsIdentIno),
		MntID: c.u32(off + obsIdentMntID),
	}
}

// Start is the object the lookup started from, captured at sys_enter
// (StartKind != StartNone).
func (c Call) Start() ObjectIdent { return c.ident(obsOffStart) }

// Root is the task's root at sys_enter (StartKind != StartNone).
func (c Call) Root() ObjectIdent { return c.ident(obsOffRoot) }

// Object is the kernel's object (FlagObsHasObject).
func (c Call) Object() ObjectIdent {
	return ObjectIdent{Dev: userDev(c.u64(obsOffDev)), Ino: c.u64(obsOffIno), MntID: c.u32(obsOffMntID)}
}

// Mode is the object's i_mode (FlagObsHasObject).
func (c Call) Mode() uint32 { return c.u32(obsOffMode) }

// FsMagic is the object's superblock magic, as statfs's f_type
// (FlagObsHasObject).
func (c Call) FsMagic() uint32 { return c.u32(obsOffFsMagic) }

// How returns openat2's open_how flags, mode and resolve (FlagObsHasHow).
func (c Call) How() (flags, mode, resolve uint64) {
	return c.u64(obsOffHow), c.u64(obsOffHow + 8), c.u64(obsOffHow + 16)
}

// PeerFamily is the family of the socket a connect used (FlagObsHasPeer).
func (c Call) PeerFamily() uint16 { return c.u16(obsOffPeerFamily) }

// Peer is that socket's peer address and port for AF_INET and AF_INET6 (a
// v4-mapped IPv6 peer stays mapped); the zero AddrPort otherwise.
func (c Call) Peer() netip.AddrPort {
	port := c.u16(obsOffPeerPort)
	switch c.PeerFamily() {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(c.b[obsOffPeer:obsOffPeer+4])), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(c.b[obsOffPeer:obsOffPeer+16])), port)
	}
	return netip.AddrPort{}
}
