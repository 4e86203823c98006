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
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/args"
	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/procinfo"
	"github.com/vigilsec/vigil/enforcer/resolve"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
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
	// quietAllows: the audit level leaves allow records out (they are
	// debug records), so nothing needs what an allow's record would show.
	quietAllows bool
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
	gatesMu    sync.Mutex
	gates      map[int]*tidGate
	freeGates  *tidGate
	nFreeGates int
}

// tidGate is one thread's turn to be decided.
type tidGate struct {
	mu   sync.Mutex
	refs int
	tid  int
	next *tidGate // in the free list
}

// maxFreeGates bounds the gates kept for reuse.
const maxFreeGates = 256

// gate waits until no other receiver is deciding a call of thread tid and
// returns the gate to pass to ungate. It allocates nothing once gates are
// reused.
func (s *Supervisor) gate(tid int) *tidGate {
	s.gatesMu.Lock()
	if s.gates == nil {
		s.gates = make(map[int]*tidGate)
	}
	g := s.gates[tid]
	if g == nil {
		if g = s.freeGates; g != nil {
			s.freeGates, s.nFreeGates = g.next, s.nFreeGates-1
			g.next = nil
		} else {
			g = &tidGate{}
		}
		g.tid = tid
		s.gates[tid] = g
	}
	g.refs++
	s.gatesMu.Unlock()
	g.mu.Lock()
	return g
}

// ungate lets the next call of g's thread in.
func (s *Supervisor) ungate(g *tidGate) {
	g.mu.Unlock()
	s.gatesMu.Lock()
	if g.refs--; g.refs == 0 {
		delete(s.gates, g.tid)
		if s.nFreeGates < maxFreeGates {
			g.next, s.freeGates = s.freeGates, g
			s.nFreeGates++
		}
	}
	s.gatesMu.Unlock()
}

// receiver is one notify loop: a locked OS thread receiving, deciding and
// answering one notification at a time, with its own scratch state.
type receiver struct {
	*Supervisor
	resolver *resolve.Resolver
	procs    *procinfo.Cache
	scratch  args.Scratch
	// secondPath holds the second path argument (rename, link): the call's
	// paths alias scratch.Path and secondPath (see transient).
	secondPath [args.PathMax]byte
	c          call
	// bind and bindArg are reused for every binding written.
	bind    loader.Binding
	bindArg []byte
	// tid is the receiver's thread; busy is when it began its current
	// notification (unix nanoseconds), 0 while it waits for one.
	tid  atomic.Int64
	busy atomic.Int64
	// signalsBlocked says the receiver's thread blocks every blockable
	// signal for as long as it serves (a quiet pool's): ADDFD need not
	// block them around each call (emulate.InstallFdOrKeep).
	signalsBlocked bool
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

// Stats counts decisions; read them after Serve returns. Allowed calls were
// continued or performed (a deferred one whatever its result); Denied ones
// refused by a rule or by vigil; KernelErrors answered with the kernel's
// own error (a lookup that failed as the kernel's would, a performed call
// that failed, arguments vigil could not read): the watchee's failures, not
// vigil's.
type Stats struct {
	Notifications, Allowed, Denied, KernelErrors, Killed, Gone uint64
}

// New returns a Supervisor, refusing policies it cannot carry out.
func New(cfg Config) (*Supervisor, error) {
	if cfg.Policy == nil {
		return nil, errors.New("creating supervisor: no policy")
	}
	plan, err := NewPlan(cfg.Policy, cfg.Unverified)
	if err != nil {
		return nil, err
	}
	unverified, err := plan.Require(cfg.Kernel != nil, cfg.Emulator != nil)
	if err != nil {
		return nil, err
	}
	if len(unverified) > 0 {
		cfg.Log.Warn().Strs("syscalls", unverified).
			Msg("no kernel binding or emulation for these yet: their content-dependent allows continue unverified (records say verified none)")
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
	s := &Supervisor{cfg: cfg, pol: cfg.Policy, log: cfg.Log, audit: cfg.Audit, ref: ref}
	s.ownRoot.Store(cfg.OwnRoot)
	s.quietAllows = cfg.Audit.GetLevel() > zerolog.DebugLevel || zerolog.GlobalLevel() > zerolog.DebugLevel
	if s.first, err = s.newReceiver(); err != nil {
		ref.Close()
		return nil, err
	}
	for _, nr := range plan.Notify {
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

// Stats returns the decision counters.
func (s *Supervisor) Stats() Stats {
	return Stats{
		Notifications: atomic.LoadUint64(&s.stats.Notifications),
		Allowed:       atomic.LoadUint64(&s.stats.Allowed),
		Denied:        atomic.LoadUint64(&s.stats.Denied),
		KernelErrors:  atomic.LoadUint64(&s.stats.KernelErrors),
		Killed:        atomic.LoadUint64(&s.stats.Killed),
		Gone:          atomic.LoadUint64(&s.stats.Gone),
	}
}

func ruleName(r *policy.Rule) string {
	if r == nil {
		return "default"
	}
	return r.String()
}
