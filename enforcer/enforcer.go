// Package enforcer is vigil's supervisor: it receives seccomp notifications,
// decodes and resolves their arguments, evaluates the policy on the object and
// carries out the verdict, writing one audit record per decision.
//
// The data path of one notification, all inline on one locked OS thread:
//
//	Recv → decode (process_vm_readv) → resolve (O_PATH in the watchee's view)
//	     → policy.Evaluate → ID_VALID → verdict (deny / kill / continue) → audit
package enforcer

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/args"
	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/procinfo"
	"github.com/vigilsec/vigil/enforcer/resolve"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
	"github.com/vigilsec/vigil/enforcer/verdict"
	"github.com/vigilsec/vigil/enforcer/view"
	"github.com/vigilsec/vigil/loader"
)

// Config configures a Supervisor.
type Config struct {
	Policy *policy.Policy
	// Log receives diagnostics; Audit receives one record per decision.
	Log   zerolog.Logger
	Audit zerolog.Logger
	// Container, when set, is added to every audit record (agent mode).
	Container string
	// OwnRoot says the watchees start in vigil's root directory and mount
	// namespace and the filter was compiled with WatchRoot: absolute paths
	// then resolve from vigil's root until a watchee calls a syscall that
	// could change that (see rootChange).
	OwnRoot bool
	// ReferencePid is the process whose view (root directory and mount
	// namespace, as they are when New runs) path rules name objects in:
	// the watchee for `vigil run`, the container's process at its handoff
	// for `vigil agent` (docs/reference-view.md). 0 means vigil's own view.
	ReferencePid int
	// Kernel, when set, binds content-dependent grants in eBPF and confirms
	// them (docs/design.md §2 "allow"). Without it, such grants are refused at
	// startup unless Unverified is set.
	Kernel *Kernel
	// Emulator, when set, performs emulate verdicts and the content-
	// dependent allows of side-effecting calls no binding can pin.
	Emulator *emulate.Emulator
	// Unverified continues content-dependent allows without a kernel binding
	// or emulation (emulate verdicts are still emulated); their records say
	// verified "none". It exists for kernels without the eBPF features vigil
	// needs, and as the naive mode the race tests beat.
	Unverified bool
	// BeforeAnswer, when set, runs after the decision and before the answer
	// with the notification and its first path argument as requested. Tests
	// use it to hold a notification pending or to signal the watchee.
	BeforeAnswer func(n *notify.Notif, path string)
	// NoRestartGuard disables the restart guard; the naive control of the
	// signal-storm test.
	NoRestartGuard bool
	// Metrics, when set, counts every audit record and emulation failure.
	Metrics Metrics
}

// Supervisor handles the notifications of one listener, with as many
// receivers (notify loops) as calls in progress need: see Serve.
type Supervisor struct {
	cfg   Config
	pol   *policy.Policy
	log   zerolog.Logger
	audit zerolog.Logger
	ref   *view.Reference
	stats Stats
	// trapped marks the syscall numbers the policy names; others arrive
	// only for root tracking.
	trapped [sysinfo.MaxNr]bool
	// ownRoot is sticky: once false it stays false for this supervisor.
	ownRoot atomic.Bool
	// rootID is the reference root's identity, for bindings by name.
	rootID loader.Root
	// replay answers the restart of an emulated call whose answer never
	// reached the watchee with that call's result (nil: no guard).
	replay *emulate.Replay
	// deferred counts the goroutines answering calls off the notify loop;
	// Serve waits for them, so none answers on a closed listener.
	deferred sync.WaitGroup
	// first is the receiver New prepares; Serve runs it and adds others.
	first *receiver
	// gates serialize the notifications of one thread across receivers:
	// a call restarted after its answer was withdrawn must find the first
	// call's result recorded (Replay), not race it on another receiver.
	gatesMu sync.Mutex
	gates   map[int]*tidGate
}

// tidGate is one thread's turn to be decided.
type tidGate struct {
	mu   sync.Mutex
	refs int
}

// gate waits until no other receiver is deciding a call of thread tid and
// returns the function that lets the next one in.
func (s *Supervisor) gate(tid int) (release func()) {
	s.gatesMu.Lock()
	if s.gates == nil {
		s.gates = make(map[int]*tidGate)
	}
	g := s.gates[tid]
	if g == nil {
		g = &tidGate{}
		s.gates[tid] = g
	}
	g.refs++
	s.gatesMu.Unlock()
	g.mu.Lock()
	return func() {
		g.mu.Unlock()
		s.gatesMu.Lock()
		if g.refs--; g.refs == 0 {
			delete(s.gates, tid)
		}
		s.gatesMu.Unlock()
	}
}

// receiver is one notify loop: a locked OS thread receiving, deciding and
// answering one notification at a time, with its own scratch state.
type receiver struct {
	*Supervisor
	resolver *resolve.Resolver
	procs    *procinfo.Cache
	scratch  args.Scratch
	c        call
	// bind and bindArg are reused for every binding written.
	bind    loader.Binding
	bindArg []byte
	// tid is the receiver's thread; busy is when it began its current
	// notification (unix nanoseconds), 0 while it waits for one.
	tid  atomic.Int64
	busy atomic.Int64
}

// newReceiver returns a receiver with its own resolver.
func (s *Supervisor) newReceiver() (*receiver, error) {
	r, err := resolve.NewIn(s.ref)
	if err != nil {
		return nil, fmt.Errorf("creating resolver: %w", err)
	}
	if s.cfg.Emulator != nil {
		// A watchee with CAP_SYS_PTRACE must not reach the workers' memory
		// or descriptors through /proc either.
		r.Protected = s.cfg.Emulator.IsWorker
	}
	return &receiver{Supervisor: s, resolver: r, procs: procinfo.New()}, nil
}

// Stats counts decisions; read them after Serve returns.
type Stats struct {
	Notifications, Allowed, Denied, Killed, Gone uint64
}

// New returns a Supervisor, refusing policies it cannot carry out.
func New(cfg Config) (*Supervisor, error) {
	if cfg.Policy == nil {
		return nil, errors.New("creating supervisor: no policy")
	}
	if err := Supported(cfg.Policy); err != nil {
		return nil, err
	}
	if cfg.Emulator == nil {
		for _, r := range cfg.Policy.Rules {
			if r.Action == policy.ActionEmulate {
				return nil, fmt.Errorf("%s: rule %q: action emulate needs the emulation engine, which is not running", r.Pos, ruleName(r))
			}
		}
	}
	if cfg.Kernel == nil && !cfg.Unverified {
		var names []string
		for _, name := range NeedsBinding(cfg.Policy) {
			if !(emulatesAllow(name) && cfg.Emulator != nil) {
				names = append(names, name)
			}
		}
		if len(names) > 0 {
			return nil, fmt.Errorf("the policy allows %s depending on pointer arguments, which needs the eBPF binding, and it is not loaded; "+
				"run where vigil can load BPF (see 'vigil doctor'), or pass --unverified to continue such calls unbound (a racing thread can then change what the kernel uses)",
				strings.Join(names, ", "))
		}
	}
	if cfg.Metrics == nil {
		cfg.Metrics = nopMetrics{}
	}
	// vigil's own /proc entries (memory, descriptors: the listener, the
	// BPF maps) then need CAP_SYS_PTRACE over vigil, not just its uid; a
	// watchee that has it is refused them by the resolver (ErrProtected).
	// Children that exec (the init step, workers) are dumpable again.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("making vigil non-dumpable: %w", err)
	}
	ref, err := captureReference(cfg.ReferencePid)
	if err != nil {
		return nil, err
	}
	if cfg.Kernel != nil {
		var unbound []string
		for _, name := range NeedsBinding(cfg.Policy) {
			if !Bindable(name) && !(emulatesAllow(name) && cfg.Emulator != nil) {
				unbound = append(unbound, name)
			}
		}
		if len(unbound) > 0 {
			cfg.Log.Warn().Strs("syscalls", unbound).
				Msg("no kernel binding or emulation for these yet: their content-dependent allows continue unverified (records say verified none)")
		}
	}
	s := &Supervisor{cfg: cfg, pol: cfg.Policy, log: cfg.Log, audit: cfg.Audit, ref: ref}
	s.ownRoot.Store(cfg.OwnRoot)
	if s.first, err = s.newReceiver(); err != nil {
		ref.Close()
		return nil, err
	}
	for _, nr := range Numbers(cfg.Policy) {
		if nr >= 0 && nr < len(s.trapped) {
			s.trapped[nr] = true
		}
	}
	if dev, ino, mnt, err := ref.Root(); err == nil {
		s.rootID = loader.Root{Dev: dev, Ino: ino, Mnt: mnt}
	}
	if cfg.Emulator != nil && !cfg.NoRestartGuard {
		s.replay = emulate.NewReplay(0)
	}
	return s, nil
}

// captureReference captures the reference view of pid (vigil's own for 0).
func captureReference(pid int) (*view.Reference, error) {
	if pid == 0 {
		ref, err := view.Own()
		if err != nil {
			return nil, fmt.Errorf("capturing vigil's own view: %w", err)
		}
		return ref, nil
	}
	ref, err := view.Capture(pid)
	if err != nil {
		return nil, fmt.Errorf("capturing the reference view: %w", err)
	}
	return ref, nil
}

// Supported reports policies this build cannot enforce faithfully.
func Supported(p *policy.Policy) error {
	for _, r := range p.Rules {
		if r.Action != policy.ActionEmulate {
			continue
		}
		for _, name := range r.Syscalls {
			if !Emulable(name) {
				return fmt.Errorf("%s: rule %q: vigil cannot emulate %s; emulable are mknod, setxattr and the path calls (unlink, rename, mkdir, link, symlink, chmod, chown, truncate)", r.Pos, ruleName(r), name)
			}
		}
	}
	return nil
}

// Stats returns the decision counters.
func (s *Supervisor) Stats() Stats {
	return Stats{
		Notifications: atomic.LoadUint64(&s.stats.Notifications),
		Allowed:       atomic.LoadUint64(&s.stats.Allowed),
		Denied:        atomic.LoadUint64(&s.stats.Denied),
		Killed:        atomic.LoadUint64(&s.stats.Killed),
		Gone:          atomic.LoadUint64(&s.stats.Gone),
	}
}

// Serve receives and answers notifications until no task uses the filter
// any more (the listener hangs up). ready, if not nil, is closed once the
// first receiver is about to receive.
//
// One receiver, on a locked OS thread, serves every call while calls are
// quick. Reading a watchee's memory can block for as long as the watchee
// likes (a page behind a FUSE file it serves), so when every receiver has
// been busy with one call for a while another receiver starts (up to
// maxReceivers): a stalled read stalls only its own call (issue 9, bypass
// 7). The kernel hands each notification to exactly one RECV, and a
// thread's calls arrive one at a time, so per-thread order is kept.
// Receivers beyond the first leave after a second without work.
//
// A Supervisor serves one listener once: Serve releases the reference view
// when it returns.
func (s *Supervisor) Serve(l *notify.Listener, ready chan<- struct{}) error {
	defer s.ref.Close()
	// Calls answered off the loop end once their watchee stops waiting
	// (which it has when the listener hangs up): wait for them.
	defer s.deferred.Wait()
	if _, err := notify.CheckSizes(); err != nil {
		return err
	}
	if ok, err := l.SetSyncWakeUp(); err != nil {
		s.log.Warn().Err(err).Msg("synchronous wake-up unavailable")
	} else if !ok {
		s.log.Debug().Msg("kernel lacks SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP")
	}
	p := &pool{s: s, l: l}
	stop := s.watchHangUp(l, p)
	defer stop()
	p.start(s.first, false, ready)
	grow := time.NewTicker(stallCheck)
	defer grow.Stop()
	for {
		select {
		case err := <-p.errs:
			if p.hup.Load() || hungUp(l.Fd()) {
				return err
			}
			// Trapped calls still wait for an answer: never leave them
			// without a receiver.
			s.log.Error().Err(err).Msg("a receiver failed; starting another")
			if err := p.replace(); err != nil {
				return err
			}
		case <-p.doneChan():
			if p.hup.Load() || hungUp(l.Fd()) {
				return nil
			}
			s.log.Warn().Msg("every receiver left while the listener is in use; starting another")
			if err := p.replace(); err != nil {
				return err
			}
		case <-grow.C:
			if err := p.growIfStalled(); err != nil {
				s.log.Warn().Err(err).Msg("starting another receiver")
			}
		}
	}
}

// Receiver pool limits. stallAfter is how long every receiver must have
// been busy with one call before another starts; maxReceivers bounds the
// threads a watchee can hold stalled at once (each one a call of its own
// threads).
const (
	stallCheck   = 20 * time.Millisecond
	stallAfter   = 50 * time.Millisecond
	maxReceivers = 256
	idleAfter    = time.Second
)

// pool is the set of receivers serving one listener.
type pool struct {
	s   *Supervisor
	l   *notify.Listener
	hup atomic.Bool

	mu        sync.Mutex
	receivers []*receiver
	running   int
	errs      chan error
	done      chan struct{}
	once      sync.Once
}

// start runs r on its own locked OS thread.
func (p *pool) start(r *receiver, extra bool, ready chan<- struct{}) {
	p.mu.Lock()
	if p.errs == nil {
		p.errs = make(chan error, maxReceivers)
		p.done = make(chan struct{})
	}
	p.receivers = append(p.receivers, r)
	p.running++
	p.mu.Unlock()
	go func() {
		runtime.LockOSThread()
		// Unlock before returning: a locked thread would exit with the
		// goroutine, and PR_SET_PDEATHSIG fires when the forking thread
		// exits.
		defer runtime.UnlockOSThread()
		r.tid.Store(int64(unix.Gettid()))
		if ready != nil {
			close(ready)
		}
		err := r.serve(p, extra)
		p.mu.Lock()
		for i, x := range p.receivers {
			if x == r {
				p.receivers = append(p.receivers[:i], p.receivers[i+1:]...)
				break
			}
		}
		p.running--
		last := p.running == 0
		p.mu.Unlock()
		if err != nil {
			p.errs <- err
		}
		if last {
			p.mu.Lock()
			done, once := p.done, &p.once
			p.mu.Unlock()
			once.Do(func() { close(done) })
		}
	}()
}

// growIfStalled starts a receiver when every receiver has been busy with
// one call for stallAfter.
func (p *pool) growIfStalled() error {
	if p.hup.Load() {
		return nil
	}
	now := time.Now().UnixNano()
	p.mu.Lock()
	n := len(p.receivers)
	stalled := n > 0 && n < maxReceivers
	for _, r := range p.receivers {
		b := r.busy.Load()
		stalled = stalled && b != 0 && now-b > int64(stallAfter)
	}
	p.mu.Unlock()
	if !stalled {
		return nil
	}
	r, err := p.s.newReceiver()
	if err != nil {
		return err
	}
	p.s.log.Debug().Int("receivers", n+1).Msg("every receiver is busy with a slow call: starting another")
	p.start(r, true, nil)
	return nil
}

// doneChan returns the channel closed when the last receiver left.
func (p *pool) doneChan() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// replace starts a receiver that waits for work without a timeout.
func (p *pool) replace() error {
	r, err := p.s.newReceiver()
	if err != nil {
		return err
	}
	p.mu.Lock()
	if p.running == 0 {
		p.done = make(chan struct{})
		p.once = sync.Once{}
	}
	p.mu.Unlock()
	p.start(r, false, nil)
	return nil
}

// tids returns the receivers' threads.
func (p *pool) tids() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int, 0, len(p.receivers))
	for _, r := range p.receivers {
		if t := r.tid.Load(); t != 0 {
			out = append(out, int(t))
		}
	}
	return out
}

// retire reports whether an extra receiver idle for idleAfter may leave:
// never the last one.
func (p *pool) retire() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running > 1
}

// serve is one receiver's loop. An extra receiver waits for work with a
// timeout and leaves when idle.
func (r *receiver) serve(p *pool, extra bool) error {
	l := p.l
	var n notify.Notif
	fds := []unix.PollFd{{Fd: int32(l.Fd()), Events: unix.POLLIN}}
	for {
		if extra {
			k, err := unix.Poll(fds, int(idleAfter/time.Millisecond))
			if p.hup.Load() {
				return nil
			}
			if err == nil && k == 0 && p.retire() {
				return nil
			}
			if err != nil || fds[0].Revents&unix.POLLIN == 0 {
				continue
			}
		}
		err := l.Recv(&n)
		switch {
		case err == nil:
			r.busy.Store(time.Now().UnixNano())
			r.handle(l, &n)
			r.busy.Store(0)
		case errors.Is(err, notify.ErrInterrupted):
			if p.hup.Load() {
				return nil
			}
		case errors.Is(err, notify.ErrGone):
			// Since Linux 6.6 a blocked RECV returns ENOENT once the filter
			// has no users left; earlier it means a task died in between
			// (or another receiver took the notification this one polled).
			if p.hup.Load() || hungUp(l.Fd()) {
				return nil
			}
		default:
			r.log.Error().Err(err).Msg("notify loop ends")
			return err
		}
	}
}

// watchHangUp polls the listener for POLLHUP on another thread and, for
// kernels whose blocked RECV does not return on hang-up, interrupts the
// receivers with SIGURG (which the Go runtime tolerates) until they return.
func (s *Supervisor) watchHangUp(l *notify.Listener, p *pool) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// events=0: only POLLHUP/POLLERR wake us, not every notification.
		fds := []unix.PollFd{{Fd: int32(l.Fd()), Events: 0}}
		for {
			_, err := unix.Poll(fds, 500)
			select {
			case <-done:
				return
			default:
			}
			if err == nil && fds[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
				break
			}
		}
		p.hup.Store(true)
		for {
			for _, tid := range p.tids() {
				_ = unix.Tgkill(unix.Getpid(), tid, unix.SIGURG)
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

func hungUp(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: 0}}
	_, err := unix.Poll(fds, 0)
	return err == nil && fds[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
}

// outcome is a decision about to be carried out.
type outcome struct {
	dec   policy.Decision
	grant verdict.Grant
	errno unix.Errno // deny errno (policy's, or the kernel's for bad input)
	// internal marks a notification vigil trapped for its own bookkeeping
	// (root tracking): it is passed on and not audited.
	internal bool
	// emulated: vigil performed the call; val is its result when errno is 0.
	emulated bool
	val      int64
	// answered: ADDFD with SEND already answered the call.
	answered bool
	// performed: vigil carried the call out (its effect happened), so a
	// restart after a withdrawn answer must not repeat it; keptFd is the
	// file an emulated open made whose ADDFD found the watchee gone.
	performed bool
	keptFd    int
	keptFlags uint32
	// deferred performs an emulated call that may block (connect, a FIFO
	// open) off the notify loop; its goroutine records the call, and
	// answers it unless deferred reports it answered itself (ADDFD).
	deferred func() (val int64, errno unix.Errno, answered bool)
}

// handle decides and answers one notification.
func (s *receiver) handle(l *notify.Listener, n *notify.Notif) {
	start := time.Now()
	defer s.gate(int(n.Pid))()
	atomic.AddUint64(&s.stats.Notifications, 1)
	tid := int(n.Pid)
	pi := s.procs.Get(tid)
	o := s.decide(l, n, pi.Tgid)
	if s.cfg.BeforeAnswer != nil {
		s.cfg.BeforeAnswer(n, s.c.paths[0])
	}
	var err error
	parked := false
	action := o.dec.Action
	switch {
	case o.errno != 0:
		err = verdict.Deny(l, n, o.errno)
		atomic.AddUint64(&s.stats.Denied, 1)
	case o.answered:
		atomic.AddUint64(&s.stats.Allowed, 1)
	case o.deferred != nil:
		parked = true
		d := s.decisionOf(n, pi, &o, false, 0)
		id, nr := *n, start
		s.deferred.Add(1)
		go func() {
			defer s.deferred.Done()
			val, errno, answered := o.deferred()
			var err error
			switch {
			case answered && errno == unix.ESRCH:
				err = notify.ErrGone
			case answered:
			case errno != 0:
				err = verdict.Deny(l, &id, errno)
			default:
				err = verdict.Return(l, &id, val)
			}
			d.errno, d.latency = errno, time.Since(nr)
			d.withdrawn = errors.Is(err, notify.ErrGone)
			d.emit(&s.audit, nil)
		}()
		atomic.AddUint64(&s.stats.Allowed, 1)
	case o.emulated:
		err = verdict.Return(l, n, o.val)
		atomic.AddUint64(&s.stats.Allowed, 1)
	case o.grant.IsBound():
		// The kernel event may arrive as soon as CONTINUE is answered: park
		// the record first.
		s.cfg.Kernel.expect(tid, int(n.Data.Nr), s.decisionOf(n, pi, &o, false, time.Since(start)), &s.audit)
		parked = true
		err = verdict.Continue(l, n, o.grant)
		if err != nil {
			s.cfg.Kernel.withdraw(tid)
		}
		atomic.AddUint64(&s.stats.Allowed, 1)
	case action == policy.ActionKill:
		tgid, ok := procinfo.FreshTgid(tid)
		if !ok {
			tgid = pi.Tgid
		}
		err = verdict.Kill(l, n, tgid)
		atomic.AddUint64(&s.stats.Killed, 1)
	default:
		err = verdict.Continue(l, n, o.grant)
		atomic.AddUint64(&s.stats.Allowed, 1)
	}
	gone := errors.Is(err, notify.ErrGone)
	if gone && o.performed && s.replay != nil {
		// The effect happened; the watchee may restart the call (a
		// signal interrupted its wait before RECV completed): remember
		// the result for the restart instead of acting twice.
		s.replay.Withdrawn(tid, &n.Data, s.c.argKey(), emulate.Result{Val: o.val, Errno: o.errno, Fd: o.keptFd, FdFlags: o.keptFlags}, o.dec)
		o.keptFd = -1
	} else if o.keptFd > 0 {
		unix.Close(o.keptFd)
	}
	if gone {
		atomic.AddUint64(&s.stats.Gone, 1)
		s.log.Debug().Uint64(audit.FieldNotifID, n.ID).Int(audit.FieldTid, tid).Msg("watchee withdrew the call before the answer")
	} else if err != nil {
		s.log.Error().Err(err).Uint64(audit.FieldNotifID, n.ID).Msg("answering notification")
	}
	s.c.release()
	if s.c.sc != nil && (s.c.sc.Name == "execve" || s.c.sc.Name == "execveat") {
		s.procs.Forget(tid)
	}
	if !o.internal && !parked {
		d := s.decisionOf(n, pi, &o, gone, time.Since(start))
		d.emit(&s.audit, nil)
	}
}

// decide evaluates the policy. Every path that cannot vet the call fails
// closed with the errno the kernel would have returned.
func (s *receiver) decide(l *notify.Listener, n *notify.Notif, tgid int) outcome {
	nr := int(n.Data.Nr)
	c := &s.c
	sc, _ := sysinfo.ByNr(nr)
	c.reset(sc, nr)
	c.tgid = tgid
	if n.Data.Arch != notify.AuditArchX86_64 || nr&notify.X32SyscallBit != 0 || nr < 0 {
		// The filter kills other ABIs; reaching here means it did not.
		return outcome{dec: policy.Decision{Action: policy.ActionDeny}, errno: unix.ENOSYS}
	}
	if s.ownRoot.Load() && s.rootChange(n) {
		s.ownRoot.Store(false)
		s.log.Debug().Int(audit.FieldTid, int(n.Pid)).Str(audit.FieldSyscall, sysinfo.Name(nr)).
			Msg("a watchee may change its root or mount namespace: resolving from its /proc root from now on")
	}
	if s.ref.Settled() && topologyChange(n) {
		// Before the answer: the call may move mounts the reference view
		// captured, after which the kernel's path of an object on them is
		// no longer its reference name.
		s.ref.Unsettle()
		s.log.Debug().Int(audit.FieldTid, int(n.Pid)).Str(audit.FieldSyscall, sysinfo.Name(nr)).
			Msg("a watchee may change a mount topology: naming objects through their filesystem path from now on")
	}
	if o, handled := s.decideSend(l, n, c); handled {
		return o // send.go: sends that may name a peer
	}
	if nr >= len(s.trapped) || !s.trapped[nr] {
		// Trapped only for root tracking; the policy has no say.
		if g, ok := verdict.ContentIndependent(s.pol, n); ok {
			return outcome{dec: policy.Decision{Action: policy.ActionAllow}, grant: g, internal: true}
		}
		return outcome{dec: policy.Decision{Action: policy.ActionDeny}, errno: unix.EPERM}
	}
	if g, ok := verdict.ContentIndependent(s.pol, n); ok {
		// The first rule naming nr has no match: decode only for the record.
		if sc != nil {
			s.decode(n, c)
		}
		d := s.pol.Evaluate(&c.pc)
		if d.Action == policy.ActionEmulate && sc != nil && s.cfg.Emulator != nil {
			if c.err != 0 {
				return outcome{dec: d, errno: c.err}
			}
			return s.emulateCall(l, n, c, d)
		}
		return s.finish(l, n, d, g)
	}
	if sc == nil {
		// Policy validation forbids match keys on syscalls vigil cannot
		// decode; fail closed if that ever breaks.
		return outcome{dec: policy.Decision{Action: policy.ActionDeny}, errno: unix.EPERM}
	}
	s.decode(n, c)
	if s.replay != nil && s.replay.Has(int(n.Pid)) {
		if o, ok := s.replayed(l, n, c); ok {
			return o
		}
	}
	// Resolve when a rule matches on the path, and also when the call will
	// be bound: the binding pins the object, whatever the rule looked at.
	if c.err == 0 && (s.pol.Needs(nr).Has(sysinfo.KeyPath) ||
		(s.cfg.Kernel != nil && Bindable(sc.Name) && len(sc.PathArgs()) > 0)) {
		s.resolvePaths(n, c, tgid)
	}
	if c.err == 0 && s.pol.Needs(nr).Has(sysinfo.KeyAddr) {
		s.resolveSocketPath(n, c)
	}
	if c.err != 0 {
		if err := l.Valid(n.ID); err != nil {
			return outcome{dec: policy.Decision{Action: policy.ActionDeny}, errno: unix.ESRCH}
		}
		return outcome{dec: policy.Decision{Action: policy.ActionDeny}, errno: c.err}
	}
	d := s.pol.Evaluate(&c.pc)
	if s.mustEmulate(c, d) {
		return s.emulateCall(l, n, c, d)
	}
	if s.cfg.Emulator != nil && !s.cfg.Unverified && c.sc.Name == "connect" && c.pc.HasAddr &&
		(d.Action == policy.ActionAllow || d.Action == policy.ActionLog) {
		if o, handled := s.emulateConnect(l, n, c, d); handled {
			return o
		}
	}
	if s.emulatesOpen(c, d) {
		if o, handled := s.emulateOpen(l, n, c, d); handled {
			return o
		}
	}
	if (d.Action == policy.ActionAllow || d.Action == policy.ActionLog) && s.cfg.Kernel != nil {
		res, errno := s.bindingFor(n, c, tgid)
		switch res {
		case bindFailed:
			// A grant that should be pinned and cannot be: fail closed.
			if err := l.Valid(n.ID); err != nil {
				return outcome{dec: d, errno: unix.ESRCH}
			}
			return outcome{dec: d, errno: errno}
		case bindNone:
			return s.finish(l, n, d, verdict.Unverified(n))
		}
		if s.cfg.Container != "" {
			// A container runtime may let processes fork before the
			// agent watched the container's first one (crun does): a
			// binding of an unwatched process would never be checked.
			if err := s.cfg.Kernel.Watch(tgid); err != nil {
				return refuse(c, d, "cannot watch the caller in eBPF: "+err.Error())
			}
		}
		g, err := verdict.Bound(l, n, s.cfg.Kernel, &s.bind)
		if err != nil {
			if !errors.Is(err, notify.ErrGone) {
				s.log.Error().Err(err).Uint64(audit.FieldNotifID, n.ID).Msg("denying: kernel binding could not be written")
			}
			return outcome{dec: d, errno: unix.EPERM}
		}
		return outcome{dec: d, grant: g}
	}
	// No binding mechanism for this call yet (docs/design.md §2 says emulate):
	// the grant is unverified and its record says so.
	return s.finish(l, n, d, verdict.Unverified(n))
}

// finish checks the notification is still the one that was read and turns
// the decision into an outcome.
func (s *receiver) finish(l *notify.Listener, n *notify.Notif, d policy.Decision, g verdict.Grant) outcome {
	// One ID_VALID after the last read of the watchee's memory or /proc:
	// if the thread is still waiting, every read above saw this task.
	if err := l.Valid(n.ID); err != nil {
		return outcome{dec: d, errno: unix.ESRCH}
	}
	switch d.Action {
	case policy.ActionDeny:
		e := d.Errno
		if e == 0 {
			e = unix.EPERM
		}
		return outcome{dec: d, errno: e}
	case policy.ActionKill:
		return outcome{dec: d}
	case policy.ActionAllow, policy.ActionLog:
		return outcome{dec: d, grant: g}
	}
	// Unknown or unsupported action: fail closed.
	return outcome{dec: d, errno: unix.EPERM}
}

// rootChange reports whether n could change its caller's root directory or
// mount namespace. It is called before the call is answered, so a path
// resolved after it never assumes vigil's root for a process that may have
// left it. Unreadable clone_args count as a change: fail towards the slower,
// always-correct resolution.
func (s *receiver) rootChange(n *notify.Notif) bool {
	switch sysinfo.Name(int(n.Data.Nr)) {
	case "chroot", "pivot_root", "setns":
		return true
	case "unshare", "clone":
		return n.Data.Args[0]&unix.CLONE_NEWNS != 0
	case "clone3":
		ca, err := args.ReadCloneArgs(int(n.Pid), n.Data.Args[0], n.Data.Args[1], s.scratch.Struct[:])
		return err != nil || ca.Flags&unix.CLONE_NEWNS != 0
	}
	return false
}

// topologyChange reports whether n may move or unmount a mount (and so free
// its id for reuse): the calls filter.MountWatch traps.
func topologyChange(n *notify.Notif) bool {
	switch sysinfo.Name(int(n.Data.Nr)) {
	case "mount":
		return n.Data.Args[3]&unix.MS_MOVE != 0
	case "umount2", "move_mount", "pivot_root":
		return true
	}
	return false
}

func ruleName(r *policy.Rule) string {
	if r == nil {
		return "default"
	}
	return r.String()
}
