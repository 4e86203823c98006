// Package observe is vigil's eBPF-only mode: no seccomp, no decisions. It
// turns the records of loader.Observer (one per syscall of the watched
// processes: the pointer arguments as user memory held them at sys_enter,
// the object the kernel used at sys_exit) into JSON lines, counts them per
// syscall, and flags the calls where the two disagree ("phantom": a racing
// rewrite of the argument, a symlink swapped under the lookup — the attack
// that beat Falco and Tracee).
//
// A phantom flag means an attack, never a reused descriptor number: the
// programs capture the objects a lookup starts from (root, cwd, the dirfd's
// file) at sys_enter, and the check compares the argument with the kernel's
// object from those same objects (see Verdict).
package observe

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigilsec/vigil/enforcer/sysinfo"
	"github.com/vigilsec/vigil/loader"
)

// DefaultSyscalls are observed when no list is given: the calls whose
// pointer arguments name files, programs and peers.
var DefaultSyscalls = []string{"open", "openat", "openat2", "creat", "execve", "execveat", "connect"}

// Source is what observe reads records from (loader.Observer).
type Source interface {
	ReadEvents(fn func(loader.Call), caughtUp func()) error
}

// Config configures an Observer.
type Config struct {
	// Out receives the JSON lines, one write per batch; nil writes none
	// (a -c summary only).
	Out io.Writer
	// Log receives diagnostics (a phantom check that failed for an
	// unexpected reason, write errors).
	Log zerolog.Logger
}

// batchMax bounds a batch: a write happens when the reader catches up or
// when this much is pending, whichever comes first.
const batchMax = 1 << 20

// Observer turns observed calls into records and counts. Handle and
// CaughtUp run on the reader's goroutine; Stats and Summary may be called
// from any goroutine.
type Observer struct {
	out   io.Writer
	log   zerolog.Logger
	judge *judge
	clock *clock
	buf   []byte

	batchStart time.Time
	inBatch    bool

	mu       sync.Mutex
	stats    Stats
	perNr    [loader.ObsSyscallNr]SyscallStats
	writeErr error
	events   atomic.Uint64
}

// Stats counts what an Observer saw.
type Stats struct {
	// Events is the number of calls recorded.
	Events uint64
	// Literal, Resolved and KernelName were checked and held; Phantoms
	// were flagged; Unchecked could not be checked (see Verdict).
	Literal, Resolved, KernelName, Phantoms, Unchecked uint64
	// Incomplete lack a part, with an error saying which.
	Incomplete uint64
	// Busy is the time the reader spent handling records (decoding,
	// checking, encoding, writing), excluding waits.
	Busy time.Duration
}

// Rate is the number of records per second the reader sustains: Events
// over Busy (0 before any record).
func (s Stats) Rate() float64 {
	if s.Busy <= 0 {
		return 0
	}
	return float64(s.Events) / s.Busy.Seconds()
}

// SyscallStats count one syscall, like a line of strace -c.
type SyscallStats struct {
	Name string
	// Calls recorded, of which Errors returned a negative value and
	// Phantoms were flagged.
	Calls, Errors, Phantoms uint64
	// Time is the total wall-clock time from sys_enter to sys_exit of
	// the calls that returned.
	Time time.Duration
}

// New returns an Observer.
func New(cfg Config) (*Observer, error) {
	j, err := newJudge()
	if err != nil {
		return nil, err
	}
	return &Observer{out: cfg.Out, log: cfg.Log, judge: j, clock: newClock(), buf: make([]byte, 0, 64<<10)}, nil
}

// Close releases what New opened.
func (o *Observer) Close() { o.judge.close() }

// Numbers converts syscall names to numbers, rejecting unknown names.
func Numbers(names []string) ([]int, error) {
	nrs := make([]int, 0, len(names))
	for _, n := range names {
		nr, ok := sysinfo.Number(strings.TrimSpace(n))
		if !ok {
			return nil, fmt.Errorf("unknown syscall %q", n)
		}
		if nr >= loader.ObsSyscallNr {
			return nil, fmt.Errorf("syscall %q (%d) is beyond what observe can filter (%d)", n, nr, loader.ObsSyscallNr)
		}
		nrs = append(nrs, nr)
	}
	sort.Ints(nrs)
	return nrs, nil
}

// Run reads records from src until it ends (the loader was closed).
func (o *Observer) Run(src Source) error {
	return src.ReadEvents(o.Handle, o.CaughtUp)
}

// Handle consumes one call: counts it, judges it, and appends its record
// to the batch.
func (o *Observer) Handle(c loader.Call) {
	if !o.inBatch {
		o.inBatch = true
		o.batchStart = time.Now()
	}
	v, why := o.judge.judge(c)
	f := c.Flags()
	incomplete := c.Errors() != 0

	o.mu.Lock()
	o.stats.Events++
	switch v {
	case Literal:
		o.stats.Literal++
	case Resolved:
		o.stats.Resolved++
	case KernelName:
		o.stats.KernelName++
	case Phantom:
		o.stats.Phantoms++
	case Unchecked:
		o.stats.Unchecked++
	}
	if incomplete {
		o.stats.Incomplete++
	}
	s := &o.perNr[c.Nr()&(loader.ObsSyscallNr-1)]
	s.Calls++
	if f.Has(loader.FlagObsHasRet) {
		if c.Ret() < 0 {
			s.Errors++
		}
		if x, e := c.ExitTime(), c.EnterTime(); x >= e {
			s.Time += time.Duration(x - e)
		}
	}
	if v == Phantom {
		s.Phantoms++
	}
	o.mu.Unlock()
	o.events.Add(1)

	if o.out == nil {
		return
	}
	o.buf = o.appendRecord(o.buf, c, v, why)
	if len(o.buf) >= batchMax {
		o.write()
	}
}

// CaughtUp ends a batch: the records pending go out in one write.
func (o *Observer) CaughtUp() {
	if o.out != nil && len(o.buf) > 0 {
		o.write()
	}
	if o.inBatch {
		o.inBatch = false
		d := time.Since(o.batchStart)
		o.mu.Lock()
		o.stats.Busy += d
		o.mu.Unlock()
	}
}

func (o *Observer) write() {
	_, err := o.out.Write(o.buf)
	o.buf = o.buf[:0]
	if err == nil {
		return
	}
	o.mu.Lock()
	first := o.writeErr == nil
	if first {
		o.writeErr = err
	}
	o.mu.Unlock()
	if first {
		o.log.Error().Err(err).Msg("writing observe events")
	}
}

// Err returns the first error writing records, if any.
func (o *Observer) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.writeErr != nil {
		return fmt.Errorf("writing observe events: %w", o.writeErr)
	}
	return nil
}

// Stats returns the counters.
func (o *Observer) Stats() Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stats
}

// Syscalls returns the per-syscall counts of the syscalls seen, the most
// time first (then the most calls, then by name).
func (o *Observer) Syscalls() []SyscallStats {
	o.mu.Lock()
	var out []SyscallStats
	for nr := range o.perNr {
		if s := o.perNr[nr]; s.Calls > 0 {
			s.Name = sysinfo.Name(nr)
			out = append(out, s)
		}
	}
	o.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Time != b.Time {
			return a.Time > b.Time
		}
		if a.Calls != b.Calls {
			return a.Calls > b.Calls
		}
		return a.Name < b.Name
	})
	return out
}

// WriteTable writes the per-syscall summary in the layout of strace -c (-w:
// wall-clock time from sys_enter to sys_exit), with a column of phantoms.
func (o *Observer) WriteTable(w io.Writer) error {
	rows := o.Syscalls()
	var total SyscallStats
	for _, r := range rows {
		total.Calls += r.Calls
		total.Errors += r.Errors
		total.Phantoms += r.Phantoms
		total.Time += r.Time
	}
	total.Name = "total"
	var b strings.Builder
	const sep = "------ ----------- ----------- --------- --------- --------- ----------------\n"
	fmt.Fprintf(&b, "%6s %11s %11s %9s %9s %9s %s\n", "% time", "seconds", "usecs/call", "calls", "errors", "phantoms", "syscall")
	b.WriteString(sep)
	line := func(r SyscallStats) {
		pct := 0.0
		if total.Time > 0 {
			pct = 100 * float64(r.Time) / float64(total.Time)
		}
		per := uint64(0)
		if r.Calls > 0 {
			per = uint64(r.Time/time.Microsecond) / r.Calls
		}
		fmt.Fprintf(&b, "%6.2f %11.6f %11d %9d %9s %9s %s\n", pct, r.Time.Seconds(), per, r.Calls,
			blankZero(r.Errors), blankZero(r.Phantoms), r.Name)
	}
	for _, r := range rows {
		line(r)
	}
	b.WriteString(sep)
	line(total)
	_, err := io.WriteString(w, b.String())
	return err
}

// blankZero leaves a zero count empty, as strace -c does for errors.
func blankZero(n uint64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatUint(n, 10)
}

// WatchCgroup adds every process in a cgroup v2 directory to the watched set.
// Processes that join the cgroup later from outside are not followed (their
// descendants are, through fork).
func WatchCgroup(watch func(int) error, dir string) (int, error) {
	b, err := os.ReadFile(dir + "/cgroup.procs")
	if err != nil {
		return 0, fmt.Errorf("reading cgroup members: %w", err)
	}
	n := 0
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		if err := watch(pid); err != nil {
			return n, fmt.Errorf("watching %d: %w", pid, err)
		}
		n++
	}
	return n, nil
}
