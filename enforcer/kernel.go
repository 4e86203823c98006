package enforcer

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
	"github.com/vigilsec/vigil/loader"
)

// Kernel is the eBPF side of enforcement, shared by every supervisor of a
// vigil process (thread ids are unique system-wide, so one loader and one
// correlator serve all listeners). It writes bindings before CONTINUE and
// completes each bound decision's audit record with what the kernel did.
type Kernel struct {
	ld  kernelMaps
	log zerolog.Logger
	id  uint64 // names its epochs (viewEpoch)
	kernelMetrics

	mu sync.Mutex
	// pending holds, per thread id, the bound decisions waiting for their
	// kernel event, oldest first. A thread's events leave the ring buffer
	// in the order its calls ran, and its notifications arrive in the same
	// order, so the oldest waiting decision is the one an event completes:
	// the reader may lag several calls behind the notify loop (hundreds
	// when events are batched: the head's tail makes appending O(1)).
	pending map[int]*pendingDecision
	// handling counts kernel events being handled: a record taken from
	// pending is written before it drops (Settle waits for both).
	handling atomic.Int32
	// quiet holds, per thread id, the record of its latest quiet grant
	// (Binding.Quiet): no event confirms one that held, so it is never
	// written unless the binding is violated. The next quiet grant of the
	// thread reuses the holder; the sweep drops old ones.
	quiet map[int]*pendingDecision
	// free holds records' holders for reuse (up to maxFree): a bound grant
	// allocates nothing.
	free     *pendingDecision
	nFree    int
	lastLost uint64

	done chan struct{} // closed when the event reader has ended
	err  error         // the reader's error, valid after done
	// stopSweep ends the periodic sweep, and swept is closed when it has:
	// Close waits for it before closing the loader whose maps it reads.
	stopSweep chan struct{}
	swept     chan struct{}
	// flushing (under mu) is set while the sweep flushes the ring buffer
	// every loader.PollInterval for pending records' confirmations, which
	// the programs commit without waking the reader; expect sets it and
	// kicks the sweep when a record is parked while it is clear.
	flushing bool
	kick     chan struct{}
}

// kernelMaps is what Kernel needs of the eBPF side: *loader.Loader, or a
// fake in the unprivileged tests of the decision core.
type kernelMaps interface {
	Close() error
	Watch(tgid int) error
	SharesFiles(tgid int) (bool, error)
	Bind(tid int, b *loader.Binding) error
	Unbind(tid int) error
	ReadEvents(fn func(*loader.Event)) error
	Flush() error
	CheckLost() (uint64, error)
	ViewEpoch() (uint64, bool)
	CommEpoch() (uint64, bool)
	SyscallTracepointsAttached() (attached bool, attaches, detaches uint64)
}

// pendingDecision is a bound grant's audit record waiting for its sys_exit,
// in its thread's queue (oldest first, linked by next).
type pendingDecision struct {
	d     decision
	audit *zerolog.Logger
	nr    int
	since time.Time
	next  *pendingDecision
	// tail is the last decision of the queue this one heads in pending
	// (nil in any other holder).
	tail *pendingDecision
	// buf holds the record's strings (callView.detach), reused.
	buf []byte
}

// maxFree bounds the holders kept for reuse.
const maxFree = 1024

// unconfirmedAfter is how long a bound decision's record waits for its
// kernel event before it is written as unconfirmed (a lost event, or a call
// blocked for that long, e.g. opening a FIFO).
const unconfirmedAfter = 30 * time.Second

// LoadKernel loads the eBPF binding, with its syscall tracepoints detached
// after detachIdle with no binding pending (loader.Options.DetachIdle: 0
// keeps them attached), and starts reading its events. A kernel that cannot
// load it yields nil and no error, after a warning that ends with
// consequence, what the caller does without it: New refuses every policy
// that needs the binding, so nothing content-dependent is continued unbound.
func LoadKernel(log zerolog.Logger, detachIdle time.Duration, consequence string) (*Kernel, error) {
	ld, err := loader.Load(loader.Options{Log: log, DetachIdle: detachIdle, NoPoll: true})
	if errors.Is(err, loader.ErrNotSupported) {
		log.Warn().Err(err).Msg("eBPF binding unavailable" + consequence)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("loading eBPF binding: %w", err)
	}
	return NewKernel(ld, log), nil
}

// NewKernel takes over a loaded loader and starts reading its events.
func NewKernel(ld *loader.Loader, log zerolog.Logger) *Kernel { return newKernel(ld, log) }

func newKernel(ld kernelMaps, log zerolog.Logger) *Kernel {
	k := &Kernel{ld: ld, log: log, id: kernelIDs.Add(1), pending: make(map[int]*pendingDecision), quiet: make(map[int]*pendingDecision),
		done:      make(chan struct{}),
		stopSweep: make(chan struct{}), swept: make(chan struct{}), kick: make(chan struct{}, 1)}
	go func() {
		defer close(k.done)
		k.err = k.run()
	}()
	return k
}

// Settle waits (up to drainWait) until no bound decision waits for its
// kernel event, so its record has been written. Confirmations wait in the
// ring buffer for the reader's next poll (loader.PollInterval), so it asks
// the reader to look now: vigil run -- true spent 40 of its 130 ms here.
func (k *Kernel) Settle() {
	deadline := time.Now().Add(drainWait)
	for time.Now().Before(deadline) {
		k.mu.Lock()
		n := len(k.pending)
		k.mu.Unlock()
		if n == 0 && k.handling.Load() == 0 {
			return
		}
		if n > 0 {
			k.flushEvents()
		}
		time.Sleep(time.Millisecond)
	}
}

// flushEvents has the reader deliver what the ring buffer holds now
// (loader.Flush): confirmations are committed without waking it.
func (k *Kernel) flushEvents() {
	if err := k.ld.Flush(); err != nil {
		k.log.Debug().Err(err).Msg("flushing the event ring buffer")
	}
}

// drainWait bounds how long Close waits for the last bound calls' events.
const drainWait = 2 * time.Second

// Close waits briefly for the records still waiting on kernel events, then
// closes the loader and writes whatever is left as unconfirmed.
func (k *Kernel) Close() error {
	k.Settle()
	close(k.stopSweep)
	<-k.swept
	cerr := k.ld.Close()
	<-k.done
	if k.err != nil {
		return k.err
	}
	return cerr
}

// Watch adds a thread group to the watched set (its children follow).
func (k *Kernel) Watch(tgid int) error { return k.ld.Watch(tgid) }

// kernelIDs numbers kernels, so that an emulator shared between two (tests
// do) never takes one's epoch for the other's.
var kernelIDs atomic.Uint64

// viewEpoch is the programs' count of syscalls that may have changed what the
// emulator snapshots of a caller (loader.ViewEpoch), named by this kernel.
func (k *Kernel) viewEpoch() emulate.Epoch {
	n, ok := k.ld.ViewEpoch()
	if !ok {
		return emulate.Epoch{}
	}
	return emulate.Epoch{Source: k.id, N: n}
}

// commEpoch is the programs' count of execs and renames of watched threads
// (loader.CommEpoch): a comm read after it still holds while it does. 0
// when it cannot be read, which leaves the comm cache to its age limit.
func (k *Kernel) commEpoch() uint64 {
	n, _ := k.ld.CommEpoch()
	return n
}

// SharesFiles reports whether another process shares tgid's descriptor
// table; unknown counts as shared (emulate rather than bind).
func (k *Kernel) SharesFiles(tgid int) bool {
	shared, err := k.ld.SharesFiles(tgid)
	return shared || err != nil
}

// Bind implements verdict.Binder: a store through the binding array's
// mmap, no syscall (see package loader). A quiet binding (b.Quiet: its
// record is not written) sends no event when it holds, and its decision is
// not parked; its violation still kills, and, with no decision waiting, is
// reported by violation from the event alone.
func (k *Kernel) Bind(tid int, b *loader.Binding) error {
	err := k.ld.Bind(tid, b)
	if err == nil {
		k.m().BindingWritten()
	}
	return err
}

// Unbind implements verdict.Binder.
func (k *Kernel) Unbind(tid int) error { return k.ld.Unbind(tid) }

// expect parks d until the kernel reports on the bound call of tid.
func (k *Kernel) expect(tid, nr int, d decision, l *zerolog.Logger) {
	since := time.Now()
	k.mu.Lock()
	p := k.free
	if p != nil {
		k.free, k.nFree = p.next, k.nFree-1
	} else {
		p = new(pendingDecision)
	}
	buf := p.buf
	*p = pendingDecision{d: d, audit: l, nr: nr, since: since}
	p.d.call.detach(&buf)
	p.buf = buf
	if q := k.pending[tid]; q == nil {
		p.tail = p
		k.pending[tid] = p
	} else {
		q.tail.next, q.tail = p, p
	}
	kick := !k.flushing
	k.flushing = true
	k.mu.Unlock()
	if kick {
		select {
		case k.kick <- struct{}{}:
		default:
		}
	}
}

// keepQuiet keeps the record of tid's quiet grant for syscall nr, in
// place of its previous one, for a violation to write.
func (k *Kernel) keepQuiet(tid, nr int, d decision, l *zerolog.Logger) {
	since := time.Now()
	k.mu.Lock()
	p := k.quiet[tid]
	if p == nil {
		if p = k.free; p != nil {
			k.free, k.nFree = p.next, k.nFree-1
		} else {
			p = new(pendingDecision)
		}
		k.quiet[tid] = p
	}
	buf := p.buf
	*p = pendingDecision{d: d, audit: l, nr: nr, since: since}
	p.d.call.detach(&buf)
	p.buf = buf
	k.mu.Unlock()
}

// takeQuiet removes and returns tid's quiet grant record if it is for
// syscall nr (for an exec, of the thread of tgid that made it: see take).
func (k *Kernel) takeQuiet(tid, tgid, nr int) *pendingDecision {
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.quiet[tid]
	if (p == nil || p.nr != nr) && handlingOf(nr).exec {
		for t, q := range k.quiet {
			if q.nr == nr && q.d.tgid == tgid {
				tid, p = t, q
				break
			}
		}
	}
	if p == nil || p.nr != nr {
		return nil
	}
	delete(k.quiet, tid)
	return p
}

// release returns holders whose records were written for reuse.
func (k *Kernel) release(ps ...*pendingDecision) {
	k.mu.Lock()
	for _, p := range ps {
		if p == nil || k.nFree >= maxFree {
			continue
		}
		*p = pendingDecision{next: k.free, buf: p.buf}
		k.free, k.nFree = p, k.nFree+1
	}
	k.mu.Unlock()
}

// take removes and returns tid's oldest waiting decision for syscall nr.
// Older decisions for other syscalls lost their events and are returned in
// stale for the caller to write as unconfirmed. An exec by a thread other
// than its group's leader reports as the leader (the kernel's de_thread gives
// the exec'ing thread the leader's id before sched_process_exec and the
// exit), so an exec's event that finds nothing under tid takes the exec
// waiting under another thread of tgid: the exec killed every other thread,
// so there is at most one.
func (k *Kernel) take(tid, tgid, nr int) (p *pendingDecision, stale []*pendingDecision) {
	k.mu.Lock()
	defer k.mu.Unlock()
	head := k.pending[tid]
	p = firstFor(head, nr)
	if p == nil && handlingOf(nr).exec {
		for t, h := range k.pending {
			if c := firstFor(h, nr); c != nil && c.d.tgid == tgid {
				tid, head, p = t, h, c
				break
			}
		}
	}
	if p == nil {
		return nil, nil
	}
	for c := head; c != p; c = c.next {
		stale = append(stale, c)
	}
	if p.next == nil {
		delete(k.pending, tid)
	} else {
		p.next.tail = head.tail
		k.pending[tid] = p.next
	}
	p.next, p.tail = nil, nil
	return p, stale
}

// firstFor is the oldest decision for syscall nr in the queue at head, or nil.
func firstFor(head *pendingDecision, nr int) *pendingDecision {
	for c := head; c != nil; c = c.next {
		if c.nr == nr {
			return c
		}
	}
	return nil
}

// withdraw writes the record of a bound call whose CONTINUE did not reach
// the watchee (the newest waiting decision of tid; none for a quiet one)
// and removes its binding.
func (k *Kernel) withdraw(tid int) {
	k.mu.Lock()
	var p *pendingDecision
	if head := k.pending[tid]; head != nil {
		var prev *pendingDecision
		for p = head; p.next != nil; p = p.next {
			prev = p
		}
		if prev == nil {
			delete(k.pending, tid)
		} else {
			prev.next, head.tail = nil, prev
		}
		p.tail = nil
	}
	k.mu.Unlock()
	_ = k.ld.Unbind(tid)
	if p != nil {
		p.d.withdrawn = true
		p.d.emit(p.audit, nil)
		k.release(p)
	}
}

// run reads kernel events until the loader is closed, completing pending
// records, and flushes what is left when it ends.
func (k *Kernel) run() error {
	go k.sweepAndFlush()
	err := k.ld.ReadEvents(k.handle)
	<-k.swept
	k.flush()
	if err != nil {
		return fmt.Errorf("reading kernel events: %w", err)
	}
	return nil
}

// sweepAndFlush writes records whose confirmation never came (every
// second) and, while records wait for theirs, has the reader look at the
// ring buffer every loader.PollInterval. It ends at stopSweep.
func (k *Kernel) sweepAndFlush() {
	defer close(k.swept)
	sweep := time.NewTicker(time.Second)
	defer sweep.Stop()
	flush := time.NewTicker(loader.PollInterval)
	flush.Stop()
	defer flush.Stop()
	for {
		select {
		case <-k.stopSweep:
			return
		case <-sweep.C:
			k.sweep(time.Now().Add(-unconfirmedAfter))
		case <-k.kick:
			flush.Reset(loader.PollInterval)
		case <-flush.C:
			k.flushEvents()
			k.mu.Lock()
			if len(k.pending) == 0 {
				k.flushing = false
				flush.Stop()
			}
			k.mu.Unlock()
		}
	}
}

func (k *Kernel) handle(ev *loader.Event) {
	// Settle must not see a record taken from pending but not yet
	// written: count the event as in hand before anything is taken.
	k.handling.Add(1)
	defer k.handling.Add(-1)
	switch ev.Type {
	case loader.EventViolation:
		k.violation(ev)
	case loader.EventExit:
		if !ev.Flags.Has(loader.FlagBound) || ev.Flags.Has(loader.FlagKilled) {
			// Killed at sys_enter: the violation already completed it.
			return
		}
		p, stale := k.take(ev.Tid, ev.Tgid, ev.Nr)
		k.unconfirmed(stale)
		if p == nil {
			return
		}
		p.d.verified = audit.VerifiedKernel
		kv := viewOf(ev)
		p.d.emit(p.audit, &kv)
		k.release(p)
	}
}

// violation records a binding that did not hold: eBPF has already sent
// SIGKILL to the caller before it could return to user mode.
func (k *Kernel) violation(ev *loader.Event) {
	p, stale := k.take(ev.Tid, ev.Tgid, ev.Nr)
	k.unconfirmed(stale)
	kv := viewOf(ev)
	kv.reason, kv.atEnter = ev.Reason.String(), !ev.Flags.Has(loader.FlagAtExit)
	k.m().Mismatch(sysinfo.Name(ev.Nr))
	if p == nil {
		p = k.takeQuiet(ev.Tid, ev.Tgid, ev.Nr)
	}
	if p == nil {
		// No decision waiting (a fork that escaped the watched set, or a
		// record already flushed): still report it.
		k.log.Error().Int(audit.FieldPid, ev.Tgid).Int(audit.FieldTid, ev.Tid).
			Str(audit.FieldSyscall, sysinfo.Name(ev.Nr)).Str(audit.FieldVerified, audit.VerifiedMismatch).
			Str("reason", kv.reason).Str("kernel_path", kv.path).Msg("binding violated; watchee killed")
		return
	}
	p.d.verified = audit.VerifiedMismatch
	p.d.level = zerolog.ErrorLevel
	p.d.emit(p.audit, &kv)
	k.release(p)
}

// viewOf is what an audit record shows of a kernel event: the return value,
// the file (path, device, inode), the connected peer, the new child.
func viewOf(ev *loader.Event) kernelView {
	kv := kernelView{ret: ev.Ret}
	if ev.Flags.Has(loader.FlagHasObject) {
		kv.dev, kv.ino, kv.path = ev.Dev, ev.Ino, ev.KPath
	}
	if ev.Flags.Has(loader.FlagHasPeer) && ev.Peer.IsValid() {
		kv.peer = ev.Peer.String()
	}
	if ev.Flags.Has(loader.FlagHasChild) {
		kv.child = ev.Child
	}
	kv.replaced = ev.Flags.Has(loader.FlagReplaced)
	return kv
}

// unconfirmed writes records whose kernel event never came.
func (k *Kernel) unconfirmed(ps []*pendingDecision) {
	for _, p := range ps {
		p.d.verified = audit.VerifiedUnconfirmed
		p.d.emit(p.audit, nil)
	}
	k.release(ps...)
}

// flush writes every record still waiting as unconfirmed: the reader ended.
func (k *Kernel) flush() {
	k.mu.Lock()
	var stale []*pendingDecision
	for tid, head := range k.pending {
		for p := head; p != nil; p = p.next {
			stale = append(stale, p)
		}
		delete(k.pending, tid)
	}
	k.mu.Unlock()
	k.unconfirmed(stale)
}

// sweep writes the records that waited since before cutoff as unconfirmed.
func (k *Kernel) sweep(cutoff time.Time) {
	var stale []*pendingDecision
	k.mu.Lock()
	for tid, head := range k.pending {
		var keep, tail *pendingDecision
		for p := head; p != nil; {
			next := p.next
			p.next = nil
			if p.since.Before(cutoff) {
				stale = append(stale, p)
			} else if keep == nil {
				keep, tail = p, p
			} else {
				tail.next, tail = p, p
			}
			p = next
		}
		if keep == nil {
			delete(k.pending, tid)
		} else {
			keep.tail = tail
			k.pending[tid] = keep
		}
	}
	var old []*pendingDecision
	for tid, p := range k.quiet {
		if p.since.Before(cutoff) {
			old = append(old, p)
			delete(k.quiet, tid)
		}
	}
	k.mu.Unlock()
	k.unconfirmed(stale)
	k.release(old...) // quiet grants that held: nothing to write
	// The loader warns once per loss, whether the event reader or this
	// sweep sees it first; the metric counts every loss.
	if lost, err := k.ld.CheckLost(); err == nil && lost > k.lastLost {
		k.m().LostEvents(lost - k.lastLost)
		k.lastLost = lost
	}
}
