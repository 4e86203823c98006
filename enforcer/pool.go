package enforcer

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/notify"
)

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
// Receivers beyond the first leave after a second without work. The
// stall check ticks only while a receiver is busy: an idle vigil (a
// watchee that sleeps, an agent's quiet containers) is not woken 50 times
// a second for it.
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
	syncWake, err := l.SetSyncWakeUp()
	if err != nil {
		s.log.Warn().Err(err).Msg("synchronous wake-up unavailable")
	} else if !syncWake {
		s.log.Debug().Msg("kernel lacks SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP")
	}
	// The kernels that have synchronous wake-up (6.6) also end a blocked
	// RECV when the filter loses its last user, so their receivers need no
	// signal to leave and may block every signal for good.
	p := &pool{s: s, l: l, quiet: syncWake, wake: make(chan struct{}, 1)}
	p.watching.Store(true)
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
		case <-p.wake:
			grow.Reset(stallCheck)
		case <-grow.C:
			if err := p.growIfStalled(); err != nil {
				s.log.Warn().Err(err).Msg("starting another receiver")
			}
			if p.quiesce() {
				grow.Stop()
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
	// quiet receivers block every blockable signal while they serve
	// (receiver.signalsBlocked).
	quiet bool
	// watching is set while Serve's stall check ticks; a receiver that
	// starts a call while it is clear sets it and sends on wake (see
	// quiesce).
	watching atomic.Bool
	wake     chan struct{}
	// lookHook, in tests, runs after quiesce's first look.
	lookHook func()

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
		if p.quiet {
			// Process-directed signals then go to other threads; the
			// runtime's preemption signal waits until the receiver
			// enters a syscall, where it is preempted anyway.
			if old, err := notify.BlockSignals(); err == nil {
				// Restored before the thread is unlocked: the runtime
				// reuses it.
				defer notify.RestoreSignals(&old)
				r.signalsBlocked = true
			}
		}
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

// busy is called by a receiver that has just set its busy time: it wakes
// the stall check if that stopped. One atomic load per call otherwise.
func (p *pool) busy() {
	if !p.watching.Load() && p.watching.CompareAndSwap(false, true) {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// quiesce reports whether the stall check may stop ticking: no receiver is
// busy. It clears watching before it looks again, so a receiver that
// becomes busy meanwhile either is seen here or sees watching clear and
// wakes the check (both are sequentially consistent atomics).
func (p *pool) quiesce() bool {
	if p.anyBusy() {
		return false
	}
	if p.lookHook != nil {
		p.lookHook()
	}
	p.watching.Store(false)
	if p.anyBusy() && p.watching.CompareAndSwap(false, true) {
		return false
	}
	return true
}

// anyBusy reports whether a receiver is handling a call.
func (p *pool) anyBusy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.receivers {
		if r.busy.Load() != 0 {
			return true
		}
	}
	return false
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
			p.busy()
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
		// events=0: only POLLHUP (and the spurious POLLERR, see
		// hangUpEvents) wake us, not every notification.
		fds := []unix.PollFd{{Fd: int32(l.Fd()), Events: 0}}
		for {
			_, err := unix.Poll(fds, 500)
			select {
			case <-done:
				return
			default:
			}
			if err == nil && fds[0].Revents&hangUpEvents != 0 {
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

// hangUpEvents are the poll events that mean a listener hung up: its filter
// has no users left (POLLHUP), or the descriptor is not open (POLLNVAL).
// Not POLLERR: seccomp's poll returns it when a signal interrupts its wait
// for the filter's notify_lock (kernel/seccomp.c, seccomp_notify_poll), and
// vigil's threads get signals — the runtime's own preemption, and plenty of
// them under load while the lock is contended. Taken for a hang-up, it made
// Serve return with watchees still waiting for answers that nobody would
// receive (TestSignalStormAppliesEachEmulatedCallOnce: two CI runs of
// seven, and one storm test of two on a 2-CPU machine with two busy loops).
const hangUpEvents = unix.POLLHUP | unix.POLLNVAL

// hungUp reports whether the listener fd hung up (hangUpEvents).
func hungUp(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: 0}}
	_, err := unix.Poll(fds, 0)
	return err == nil && fds[0].Revents&hangUpEvents != 0
}
