// Package loader owns vigil's eBPF objects (bpf/vigil.bpf.c, embedded by
// bpf2go): it loads and attaches the programs, gives typed access to the
// watched set and the binding map, and reads the event ring buffer.
//
// The enforcer writes a Binding for a thread while the thread waits in a
// seccomp notification, then answers CONTINUE. The programs re-check the
// argument at sys_enter and the object the kernel used (the file an open
// returned, the file an execve runs, the peer a connect reached, the
// namespaces a clone child got), and SIGKILL the watchee before it returns
// to user mode when either differs.
package loader

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// ErrNotSupported is wrapped, with the reason, by Load when this process or
// kernel cannot load or attach the programs (not root, lockdown, a missing
// kernel feature, another architecture).
var ErrNotSupported = errors.New("eBPF binding not supported here")

// DefaultRingBufferSize is the event ring buffer's size when
// Options.RingBufferSize is 0.
const DefaultRingBufferSize = 16 << 20

// Options configure Load.
type Options struct {
	// Capture lists the syscall numbers (0..CaptureNr-1) for which ENTER
	// and EXIT events are emitted (observe mode, audit correlation). Bound
	// calls get EXIT (or VIOLATION) events whether captured or not.
	Capture []int
	// Log receives diagnostics; the zero Logger discards them.
	Log zerolog.Logger
	// RingBufferSize is the event ring buffer's size in bytes: a power of
	// two, a multiple of the page size, at most 1 GiB. 0 means
	// DefaultRingBufferSize.
	RingBufferSize int
	// DetachIdle, when above 0, attaches the sys_enter and sys_exit
	// programs only while vigil needs them (see lazy.go): they are detached
	// once nothing used them for between one and two DetachIdle and no
	// binding or doomed child is pending, and attached again by the next
	// Bind or ViewEpoch. Every other process of the host then pays nothing
	// while vigil is idle. 0 keeps them attached for the loader's life, as
	// does a non-empty Capture. The product uses DefaultDetachIdle.
	DetachIdle time.Duration
	// NoPoll makes ReadEvents wait for events without looking every
	// PollInterval for those committed without a wake-up: it delivers them
	// when an event wakes it or at Flush. A caller that waits for such an
	// event (a bound call's confirmation) flushes while it waits, and an
	// idle vigil sleeps. Ignored when Capture is not empty.
	NoPoll bool

	// unattached names tracepoints Load leaves unattached: tests use it to
	// reach the fail-closed paths of a check that never ran.
	unattached []string
}

// Loader holds the loaded programs, their links and the ring-buffer reader.
// Its methods are safe for concurrent use, except that ReadEvents must have
// one caller at a time.
type Loader struct {
	log zerolog.Logger
	// noPoll: ReadEvents waits without a deadline (Options.NoPoll).
	noPoll bool
	// lost warns once about each increase of the lost-event counter.
	lost   LostEvents
	objs   vigilObjects
	links  []link.Link
	reader *ringbuf.Reader

	closeOnce sync.Once
	closeErr  error

	// bindMu guards the reused key and value Bind marshals from, so that a
	// Bind allocates nothing, and the binding slots (slots.go).
	bindMu  sync.Mutex
	bindKey uint32
	bindVal vigilVigilBinding
	// slotMem and ctlMem are the mmaps of the slots and bind_ctl arrays;
	// hashedTids the threads whose binding may be in the bindings hash.
	slotMem, ctlMem []byte
	hashedTids      map[uint32]struct{}
	// unmapMu keeps ctlMem mapped for CommEpoch, which every notification
	// reads: a read lock, not bindMu, which an attach or detach holds for
	// most of a millisecond.
	unmapMu sync.RWMutex
	// lazy attaches the syscall tracepoints on demand (Options.DetachIdle);
	// nil when they stay attached.
	lazy *lazySyscalls
}

// Load loads the eBPF programs and attaches them to the sys_enter,
// sys_exit, sched_process_fork, sched_process_exec, sched_process_exit and
// task_rename raw tracepoints (with Options.DetachIdle, sys_enter and sys_exit from then
// on only while they are needed: lazy.go).
// vigil's own process is never watched. On failure it closes whatever it
// opened; an error that means "not possible here" (EPERM, lockdown, a
// missing feature) wraps ErrNotSupported.
func Load(opts Options) (*Loader, error) {
	mask, err := captureMask(opts.Capture)
	if err != nil {
		return nil, err
	}
	rbSize, err := ringBufferSize(opts.RingBufferSize)
	if err != nil {
		return nil, err
	}
	if runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("loading eBPF programs: %w: they read x86_64 registers and syscall numbers, this is %s", ErrNotSupported, runtime.GOARCH)
	}

	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; on newer
	// ones this is a no-op.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, classify("raising RLIMIT_MEMLOCK", err)
	}
	spec, err := vigilSpec(mask, rbSize)
	if err != nil {
		return nil, err
	}
	l := &Loader{log: opts.Log, noPoll: opts.NoPoll && len(opts.Capture) == 0}
	if err := spec.LoadAndAssign(&l.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			// The full log is long; it matters only when debugging the
			// C side.
			l.log.Debug().Str("verifier", fmt.Sprintf("%+v", ve)).Msg("eBPF verifier rejected vigil's programs")
		}
		return nil, classify("loading eBPF programs", err)
	}
	if err := l.mapBindings(); err != nil {
		l.Close()
		return nil, classify("mapping binding slots", err)
	}
	lazy := opts.DetachIdle > 0 && len(opts.Capture) == 0 && len(opts.unattached) == 0
	if err := l.attach(opts.unattached, lazy); err != nil {
		l.Close()
		return nil, err
	}
	if lazy {
		if err := l.startLazy(opts.DetachIdle); err != nil {
			l.Close()
			return nil, err
		}
	}
	l.reader, err = ringbuf.NewReader(l.objs.Events)
	if err != nil {
		l.Close()
		return nil, classify("opening ring buffer reader", err)
	}
	l.log.Debug().Int("ring_buffer", rbSize).Int("captured", len(opts.Capture)).Msg("eBPF binding loaded")
	return l, nil
}

// captureMask turns Options.Capture into the programs' capture_mask.
func captureMask(capture []int) ([CaptureNr / 64]uint64, error) {
	var mask [CaptureNr / 64]uint64
	for _, nr := range capture {
		if nr < 0 || nr >= CaptureNr {
			return mask, fmt.Errorf("capturing syscall %d: out of range 0..%d", nr, CaptureNr-1)
		}
		mask[nr/64] |= 1 << (nr % 64)
	}
	return mask, nil
}

// ringBufferSize checks Options.RingBufferSize (0 for the default).
func ringBufferSize(size int) (int, error) {
	if size == 0 {
		size = DefaultRingBufferSize
	}
	if size < os.Getpagesize() || size > 1<<30 || size&(size-1) != 0 || size%os.Getpagesize() != 0 {
		return 0, fmt.Errorf("sizing ring buffer: %d is not a power of two multiple of the page size up to 1 GiB", size)
	}
	return size, nil
}

// vigilSpec reads the embedded eBPF object and sets what Load was asked
// for: the captured syscalls, vigil's own tgid (never watched) and the ring
// buffer's size.
func vigilSpec(mask [CaptureNr / 64]uint64, rbSize int) (*ebpf.CollectionSpec, error) {
	spec, err := loadVigil()
	if err != nil {
		return nil, fmt.Errorf("reading embedded eBPF object: %w", err)
	}
	if err := spec.Variables[vigilVarCaptureMask].Set(mask); err != nil {
		return nil, fmt.Errorf("setting capture_mask: %w", err)
	}
	if err := spec.Variables[vigilVarCapturing].Set(mask != [CaptureNr / 64]uint64{}); err != nil {
		return nil, fmt.Errorf("setting capturing: %w", err)
	}
	if err := spec.Variables[vigilVarSelfTgid].Set(uint32(os.Getpid())); err != nil {
		return nil, fmt.Errorf("setting self_tgid: %w", err)
	}
	if err := spec.Variables[vigilVarWakeupBytes].Set(uint64(rbSize / wakeupFraction)); err != nil {
		return nil, fmt.Errorf("setting wakeup_bytes: %w", err)
	}
	spec.Maps[vigilMapEvents].MaxEntries = uint32(rbSize)
	return spec, nil
}

// tracepointProgram is a program and the raw tracepoint it attaches to.
type tracepointProgram struct {
	name string
	prog *ebpf.Program
}

// attach attaches the loaded programs to their raw tracepoints, but those
// named in unattached, and but sys_enter and sys_exit when they are
// attached on demand (lazy: startLazy). The caller closes l when it fails.
func (l *Loader) attach(unattached []string, lazy bool) error {
	// fork/exit first, so that the watched set follows the process tree
	// before any binding can be checked; then the mid-call checks, before
	// sys_exit expects them to have run.
	tps := []tracepointProgram{
		{"sched_process_fork", l.objs.VigilFork},
		{"sched_process_exit", l.objs.VigilExit},
		{"sched_process_exec", l.objs.VigilExec},
		{"task_rename", l.objs.VigilRename},
	}
	if !lazy {
		tps = append(tps, l.syscallTracepoints()...)
	}
	for _, tp := range tps {
		if slices.Contains(unattached, tp.name) {
			continue
		}
		lk, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp.name, Program: tp.prog})
		if err != nil {
			return classify("attaching raw tracepoint "+tp.name, err)
		}
		l.links = append(l.links, lk)
	}
	return nil
}

// classify wraps err with what, and with ErrNotSupported when err means the
// kernel or our privileges do not allow BPF here.
func classify(what string, err error) error {
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES), errors.Is(err, unix.ENOSYS),
		errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, ebpf.ErrNotSupported), errors.Is(err, btf.ErrNotSupported):
		return fmt.Errorf("%s: %w: %w", what, ErrNotSupported, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Close detaches the programs and frees the maps, in the reverse order of
// Load. A ReadEvents in progress returns nil. Close is idempotent.
func (l *Loader) Close() error {
	l.closeOnce.Do(func() {
		var errs []error
		l.stopLazy()
		if l.reader != nil {
			if err := l.reader.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing ring buffer reader: %w", err))
			}
		}
		for i := len(l.links) - 1; i >= 0; i-- {
			if err := l.links[i].Close(); err != nil {
				errs = append(errs, fmt.Errorf("detaching program: %w", err))
			}
		}
		if err := l.unmapBindings(); err != nil {
			errs = append(errs, fmt.Errorf("unmapping binding slots: %w", err))
		}
		if err := l.objs.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing eBPF objects: %w", err))
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// Watch adds the thread group tgid to the watched set. Its future children
// are added by the fork program; threads share the tgid. Only watched
// processes have their bindings checked.
func (l *Loader) Watch(tgid int) error {
	if tgid <= 0 || tgid == os.Getpid() {
		return fmt.Errorf("watching %d: not a watchable process", tgid)
	}
	key, one := uint32(tgid), uint8(1)
	if err := l.objs.Watched.Update(&key, &one, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("watching %d: %w", tgid, err)
	}
	return nil
}

// Unwatch removes tgid from the watched set; it is not an error if it was
// not there (the exit program removes a thread group that ended).
func (l *Loader) Unwatch(tgid int) error {
	key := uint32(tgid)
	if err := l.objs.Watched.Delete(&key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("unwatching %d: %w", tgid, err)
	}
	return nil
}

// Watched reports whether tgid is in the watched set.
func (l *Loader) Watched(tgid int) (bool, error) {
	key := uint32(tgid)
	var v uint8
	if err := l.objs.Watched.Lookup(&key, &v); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("looking up watched %d: %w", tgid, err)
	}
	return true, nil
}

// SharesFiles reports whether another thread group shares tgid's
// descriptor table (clone(CLONE_FILES) without CLONE_THREAD), as eBPF saw at
// fork: a descriptor a bound open hands to tgid then reaches that group too,
// and a kill after the fact cannot take it back, so such opens are emulated.
//
// While no thread group ever shared a table — nearly every workload — the
// answer comes from the count the programs keep in the bindings' control
// page, without a syscall; the caller publishes its binding first (see
// vigil.bpf.c's fork handler for why either side then sees the other).
func (l *Loader) SharesFiles(tgid int) (bool, error) {
	if l.ctlMem != nil && l.sharedFilesSeen() == 0 {
		return false, nil
	}
	key := uint32(tgid)
	var v uint8
	if err := l.objs.SharedFiles.Lookup(&key, &v); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("looking up shared descriptor tables of %d: %w", tgid, err)
	}
	return true, nil
}

// Binding is the identity a CONTINUE grant was vetted against. Which
// fields matter depends on Kind; Bind ignores the others.
type Binding struct {
	// Nr is the syscall number the grant is for.
	Nr int
	// Kind says which object is checked, and when.
	Kind BindKind
	// ArgIndex is the argument register (0..5) holding the pointer Arg was
	// read from: the path (open family, execve 0, execveat 1), the sockaddr
	// (connect 1) or the struct clone_args (clone3 0).
	ArgIndex int
	// Arg is the vetted argument as read from the watchee, re-read and
	// compared at sys_enter (the tripwire). BindFile, BindCreate, BindExec:
	// the path bytes, without NUL. BindConnect: the addrlen bytes of the
	// sockaddr (at most 128). BindClone: the size bytes of clone3's
	// clone_args; empty for clone, whose arguments are all registers. An
	// empty Arg of BindConnect or BindClone skips the tripwire.
	Arg []byte
	// Dev and Ino identify the vetted object, as fstat reports it
	// (userspace st_dev; Bind converts Dev to the kernel's encoding):
	// the file (BindFile), its parent directory (BindCreate), the file the
	// kernel will run (BindExec: for a #! script, its final interpreter),
	// or the socket file of an AF_UNIX path peer (BindConnect).
	Dev, Ino uint64
	// Name is the final path component the file must get (BindCreate).
	Name string
	// Family is the vetted peer's family (BindConnect): unix.AF_INET,
	// AF_INET6, AF_UNIX, or AF_UNSPEC for a connect that dissolves an
	// association, after which nothing may be connected.
	Family uint16
	// Addr and Port are the vetted peer of an AF_INET (Addr.Is4) or
	// AF_INET6 (Addr.Is6; a v4-mapped address stays mapped, as the kernel
	// keeps it) connect. An AF_INET6 datagram socket may be connected with
	// a sockaddr_in: bind that as AF_INET.
	Addr netip.Addr
	Port uint16
	// UnixName is the vetted AF_UNIX peer as sun_path bytes. An abstract
	// name, with its leading NUL byte, is pinned by its bytes. A path is
	// pinned by Dev and Ino of the socket file it resolves to in the
	// watchee's view, not by the string: the listener's recorded address is
	// its own spelling (relative, or from another root or mount namespace),
	// and equal names do not make the same socket.
	UnixName string
	// CloneFlags are the vetted flags of a clone (its flags register; the
	// exit-signal byte is ignored) or clone3 (clone_args.flags). Only the
	// CLONE_NEW* bits are checked: the child must have exactly those new
	// namespaces.
	CloneFlags uint64
	// Path, when set (BindFile, BindExec), is the vetted object's path as
	// seen from View.Root on mount MntID: another object the kernel finds
	// under exactly that path, on that mount, with the caller's root still
	// View.Root, replaced the vetted one under the same name (a rename over
	// it) and the grant stands (FlagReplaced). Empty: only Dev/Ino hold.
	Path  string
	MntID int
	View  Root
	// Quiet says nothing waits for the call's record: when the binding
	// holds, sys_exit sends no event (a violation still kills and is
	// reported).
	Quiet bool
}

// Root identifies a root directory: its device (userspace st_dev), inode
// and mount id.
type Root struct {
	Dev, Ino uint64
	Mnt      int
}

// Bind writes b as the pending grant of thread tid, replacing any other,
// through the binding array's mmap (no syscall, no allocation; the bindings
// hash when another thread's pending binding holds tid's slot, see
// slots.go). Call it while tid waits
// in the notification, before answering CONTINUE; if it fails, do not
// CONTINUE. The programs check the next syscall numbered b.Nr that tid
// makes and delete the binding when it returns. tid's thread group must be
// watched: bindings of unwatched processes are never checked.
//
// A non-leader thread that execs takes over its thread group leader's id;
// the programs follow, and the exec's events carry the new id (the tgid).
func (l *Loader) Bind(tid int, b *Binding) error {
	if tid <= 0 {
		return fmt.Errorf("binding thread %d: bad thread id", tid)
	}
	if err := b.validate(); err != nil {
		return fmt.Errorf("binding thread %d: %w", tid, err)
	}
	dev, err := kernelDev(b.Dev)
	if err != nil {
		return fmt.Errorf("binding thread %d: %w", tid, err)
	}

	l.bindMu.Lock()
	defer l.bindMu.Unlock()
	if err := l.needSyscalls(); err != nil {
		return fmt.Errorf("binding thread %d: %w", tid, err)
	}
	l.bindKey = uint32(tid)
	l.bindVal = vigilVigilBinding{
		Dev:      dev,
		Ino:      b.Ino,
		ArgHash:  FNV1a(b.Arg),
		ArgLen:   uint32(len(b.Arg)),
		Nr:       uint32(b.Nr),
		Kind:     uint32(b.Kind),
		ArgIndex: uint32(b.ArgIndex),
		State:    bindArmed,
	}
	if b.Quiet {
		l.bindVal.Flags = bindQuiet
	}
	v := &l.bindVal
	switch b.Kind {
	case BindCreate:
		v.NameHash = fnv1aString(b.Name)
	case BindConnect:
		v.Family = b.Family
		switch b.Family {
		case unix.AF_INET:
			a := b.Addr.As4()
			copy(v.Addr[:], a[:])
			v.Port = b.Port
		case unix.AF_INET6:
			v.Addr = b.Addr.As16()
			v.Port = b.Port
		case unix.AF_UNIX:
			if b.UnixName[0] == 0 {
				v.Addr[0] = unixAbstract
				v.NameHash = fnv1aString(b.UnixName[1:])
			} else {
				v.Addr[0] = unixPath
			}
		}
	case BindClone:
		v.CloneFlags = b.CloneFlags
	}
	if b.Path != "" && (b.Kind == BindFile || b.Kind == BindExec) {
		rdev, err := kernelDev(b.View.Dev)
		if err != nil {
			return fmt.Errorf("binding thread %d: %w", tid, err)
		}
		v.PathHash, v.MntId = fnv1aString(b.Path), uint32(b.MntID)
		v.RootDev, v.RootIno, v.RootMnt = rdev, b.View.Ino, uint32(b.View.Mnt)
	}
	return l.publish(uint32(tid))
}

// sockaddrMax is sizeof(struct sockaddr_storage): connect refuses longer
// addresses (move_addr_to_kernel).
const sockaddrMax = 128

// sunPathMax is sizeof(((struct sockaddr_un *)0)->sun_path).
const sunPathMax = 108

func (b *Binding) validate() error {
	switch {
	case b.Nr < 0 || b.Nr >= CaptureNr:
		return fmt.Errorf("syscall %d out of range", b.Nr)
	case b.ArgIndex < 0 || b.ArgIndex > 5:
		return fmt.Errorf("argument index %d out of range", b.ArgIndex)
	case len(b.Arg) >= PathMax:
		return fmt.Errorf("argument of %d bytes exceeds PATH_MAX", len(b.Arg))
	}
	switch b.Kind {
	case BindFile, BindCreate:
		switch b.Nr {
		case unix.SYS_OPEN, unix.SYS_CREAT, unix.SYS_OPENAT, unix.SYS_OPENAT2:
		default:
			return fmt.Errorf("kind %s binds the open family, not syscall %d", b.Kind, b.Nr)
		}
		if err := b.validatePath(); err != nil {
			return err
		}
		if b.Kind == BindCreate && !validName(b.Name) {
			return fmt.Errorf("bad final component %q", b.Name)
		}
	case BindExec:
		switch {
		case b.Nr == unix.SYS_EXECVE && b.ArgIndex == 0, b.Nr == unix.SYS_EXECVEAT && b.ArgIndex == 1:
		default:
			return fmt.Errorf("kind exec binds execve's argument 0 or execveat's 1, not syscall %d's %d", b.Nr, b.ArgIndex)
		}
		return b.validatePath()
	case BindConnect:
		if b.Nr != unix.SYS_CONNECT || b.ArgIndex != 1 {
			return fmt.Errorf("kind connect binds connect's argument 1, not syscall %d's %d", b.Nr, b.ArgIndex)
		}
		if len(b.Arg) > sockaddrMax {
			return fmt.Errorf("sockaddr of %d bytes exceeds %d", len(b.Arg), sockaddrMax)
		}
		return b.validatePeer()
	case BindClone:
		switch {
		case b.Nr == unix.SYS_CLONE3 && b.ArgIndex == 0:
		case b.Nr == unix.SYS_CLONE && len(b.Arg) == 0:
		case b.Nr == unix.SYS_CLONE:
			return errors.New("clone has no pointer argument to bind")
		default:
			return fmt.Errorf("kind clone binds clone or clone3's argument 0, not syscall %d's %d", b.Nr, b.ArgIndex)
		}
	default:
		return fmt.Errorf("unsupported kind %s", b.Kind)
	}
	return nil
}

func (b *Binding) validatePath() error {
	if bytes.IndexByte(b.Arg, 0) >= 0 {
		return errors.New("argument contains NUL")
	}
	return nil
}

func (b *Binding) validatePeer() error {
	switch b.Family {
	case unix.AF_UNSPEC:
	case unix.AF_INET:
		if !b.Addr.Is4() {
			return fmt.Errorf("AF_INET peer %v is not an IPv4 address", b.Addr)
		}
	case unix.AF_INET6:
		if !b.Addr.Is6() {
			return fmt.Errorf("AF_INET6 peer %v is not an IPv6 address", b.Addr)
		}
	case unix.AF_UNIX:
		switch n := b.UnixName; {
		case n == "" || len(n) > sunPathMax:
			return fmt.Errorf("AF_UNIX peer name of %d bytes (want 1..%d)", len(n), sunPathMax)
		case n[0] == 0:
		case strings.IndexByte(n, 0) >= 0:
			return fmt.Errorf("AF_UNIX peer path %q contains NUL", n)
		case b.Ino == 0:
			return fmt.Errorf("AF_UNIX peer path %q needs the socket file's Dev and Ino", n)
		}
	default:
		return fmt.Errorf("unsupported peer family %d", b.Family)
	}
	return nil
}

// validName reports whether s can be a final path component (NAME_MAX 255).
func validName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '/' || s[i] == 0 {
			return false
		}
	}
	return true
}

// Unbind removes tid's pending grant, e.g. when the CONTINUE could not be
// sent; without a syscall unless the grant went to the bindings hash. It is
// not an error if none is pending (sys_exit deletes bindings it checked).
func (l *Loader) Unbind(tid int) error {
	l.bindMu.Lock()
	defer l.bindMu.Unlock()
	l.withdraw(uint32(tid))
	return nil
}

// Lost returns how many events were dropped because the ring buffer was
// full, summed over CPUs, since Load.
func (l *Loader) Lost() (uint64, error) {
	var key uint32
	var perCPU []uint64
	if err := l.objs.Lost.Lookup(&key, &perCPU); err != nil {
		return 0, fmt.Errorf("reading lost-event counter: %w", err)
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	return n, nil
}

// CheckLost reads the lost-event counter, warns (WarnLost) about the
// events lost since any earlier look, ReadEvents' included, and returns the
// total since Load.
func (l *Loader) CheckLost() (uint64, error) {
	n, err := l.Lost()
	if err != nil {
		return 0, err
	}
	l.lost.Note(&l.log, n)
	return n, nil
}

// Captured events and confirmed bound calls are committed without waking
// the reader until 1/wakeupFraction of the ring buffer is pending (see
// submit_event in bpf/vigil.bpf.c); ReadEvents polls every PollInterval to
// pick up a quiet tail, or at once after Flush. Violations wake it at once.
const (
	wakeupFraction = 64
	// PollInterval bounds how long a captured event can wait in the ring
	// buffer before ReadEvents delivers it.
	PollInterval = 50 * time.Millisecond
)

// Flush makes ReadEvents deliver the events already in the ring buffer now
// rather than at its next poll: whoever waits for the quiet tail (a record
// that waits for its confirmation as vigil ends) need not wait out
// PollInterval.
func (l *Loader) Flush() error {
	if err := l.reader.Flush(); err != nil {
		return fmt.Errorf("flushing the event ring buffer: %w", err)
	}
	return nil
}

// lostCheckInterval is how often (in event time) ReadEvents looks at the
// lost-event counter to warn about drops.
const lostCheckInterval = 1e9

// ReadEvents blocks reading the ring buffer and calls fn with each decoded
// event, until Close (then it returns nil) or a read error. It reuses one
// Event and one buffer and allocates nothing per event: ev.Path and
// ev.KPath are valid only during fn (use Event.Clone to keep one).
// Violations arrive at once; confirmations of bound calls and plain captured
// events may wait up to PollInterval (50ms) when few are pending, or until
// Flush (with Options.NoPoll, until Flush). Records that do not decode
// are logged and skipped; drops counted by the programs are logged at warn
// about once a second while events flow.
func (l *Loader) ReadEvents(fn func(*Event)) error {
	var (
		rec       ringbuf.Record
		ev        Event
		lastCheck uint64
	)
	for {
		if !l.noPoll {
			l.reader.SetDeadline(time.Now().Add(PollInterval))
		}
		if err := l.reader.ReadInto(&rec); err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, ringbuf.ErrFlushed):
				continue
			case errors.Is(err, ringbuf.ErrClosed):
				return nil
			}
			return fmt.Errorf("reading ring buffer: %w", err)
		}
		if err := decodeEvent(rec.RawSample, &ev, true); err != nil {
			l.log.Error().Err(err).Msg("skipping undecodable eBPF event")
			continue
		}
		fn(&ev)
		if ev.Time-lastCheck >= lostCheckInterval {
			lastCheck = ev.Time
			_, _ = l.CheckLost()
		}
	}
}
