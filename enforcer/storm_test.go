package enforcer_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// The signal storm: stormThreads threads each run stormRounds rounds of the
// nine non-idempotent calls of enforcer/testdata/storm/storm.c (O_CREAT|O_EXCL
// open, mkdir, link, symlink, rename, four unlinks), 16 × 1400 × 9 = 201,600
// calls, while a signaller thread interrupts them with an SA_RESTART handler
// every stormIntervalUs microseconds. Under the write-protect policy below
// every one of them is emulated. At about 3,000 emulated calls a second on
// this 2-core machine, one storm takes a little over a minute.
const (
	stormThreads    = 16
	stormRounds     = 1400
	stormIntervalUs = 20
	// vigil's own threads are signalled too (stormSupervisor).
	stormSupervisorUs = 100
	// The naive control runs in shorter storms until one shows a doubled
	// effect, at most stormControlMax calls in all.
	stormControlRounds = 350
	stormControlMax    = 4 * stormThreads * stormControlRounds * 9
)

// stormResult is storm's summary line and the lines before it.
type stormResult struct {
	calls, ok, doubled, wrong, leftover, signals int
	reports                                      []string
}

func parseStorm(t *testing.T, out string) stormResult {
	t.Helper()
	ls := lines(out)
	var s stormResult
	last := ls[len(ls)-1]
	if _, err := fmt.Sscanf(last, "calls=%d ok=%d doubled=%d wrong=%d leftover=%d signals=%d",
		&s.calls, &s.ok, &s.doubled, &s.wrong, &s.leftover, &s.signals); err != nil {
		t.Fatalf("storm printed no summary (%v):\n%s", err, out)
	}
	s.reports = ls[:len(ls)-1]
	return s
}

func (s stormResult) failures() int { return s.doubled + s.wrong + s.leftover }

func (s stormResult) String() string {
	return fmt.Sprintf("%d calls, %d ok, %d doubled effects, %d wrong answers, %d entries left over, %d signals handled",
		s.calls, s.ok, s.doubled, s.wrong, s.leftover, s.signals)
}

// stormRecords counts what the audit records of a storm say.
type stormRecords struct {
	emulated, withdrawn int
	samples             []string // some withdrawn records
}

// runStorm runs storm under pol in dir (which must be empty) with the
// options given, and counts its audit records (written at debug level, as
// `vigil run --log FILE` does, through a file so 200k records are not held in
// memory).
func runStorm(t *testing.T, pol string, dir string, rounds int, opts ...runOpt) (stormResult, stormRecords, time.Duration) {
	t.Helper()
	storm := testenv.Bin(t, "storm")
	logf, err := os.CreateTemp(t.TempDir(), "audit")
	if err != nil {
		t.Fatal(err)
	}
	sink := audit.NewSink(logf)
	opts = append(opts, func(c *enforcer.RunConfig) { c.Audit = audit.NewLogger(sink, zerolog.DebugLevel) })
	stop := stormSupervisor(t)
	start := time.Now()
	r := supervise(t, mustPolicy(t, pol), []string{storm, dir, fmt.Sprint(stormThreads), fmt.Sprint(rounds), fmt.Sprint(stormIntervalUs)}, opts...)
	took := time.Since(start)
	stop()
	if err := sink.Close(); err != nil {
		t.Fatalf("closing the audit log: %v", err)
	}
	if r.code != 0 {
		t.Fatalf("storm under vigil: exit %d, stdout:\n%s", r.code, r.stdout)
	}
	var recs stormRecords
	f, err := os.Open(logf.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Bytes()
		if bytes.Contains(l, []byte(`"emulated":true`)) {
			recs.emulated++
		}
		if bytes.Contains(l, []byte(`"withdrawn":true`)) {
			recs.withdrawn++
			if len(recs.samples) < 5 {
				recs.samples = append(recs.samples, string(l))
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading the audit log: %v", err)
	}
	return parseStorm(t, r.stdout), recs, took
}

// stormSupervisor sends SIGURG to every thread of this process — vigil's
// notify loop included, which runs in the test binary — every
// stormSupervisorUs microseconds until stop is called. The Go runtime sends
// itself SIGURG to preempt goroutines, so the signal is harmless to vigil
// and only interrupts whatever syscall a thread is in, as the runtime's own
// preemption and GC signals do at random: an interrupted ioctl is restarted
// (SA_RESTART). A restarted SECCOMP_IOCTL_NOTIF_ADDFD with
// SECCOMP_ADDFD_FLAG_SEND is one of the ways a call can be answered twice or
// not at all.
func stormSupervisor(t *testing.T) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		pid := os.Getpid()
		var tids []int
		for k := 0; ; k++ {
			select {
			case <-done:
				return
			default:
			}
			if k%1000 == 0 {
				tids = tids[:0]
				ents, _ := os.ReadDir("/proc/self/task")
				for _, e := range ents {
					if tid, err := strconv.Atoi(e.Name()); err == nil {
						tids = append(tids, tid)
					}
				}
			}
			if len(tids) > 0 {
				_ = unix.Tgkill(pid, tids[k%len(tids)], unix.SIGURG)
			}
			time.Sleep(stormSupervisorUs * time.Microsecond)
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// TestSignalStormAppliesEachEmulatedCallOnce checks "one syscall, one
// effect" under signals on both sides of the notification:
//
//   - The watchee's threads get SIGUSR1 (an SA_RESTART handler). A signal
//     that interrupts a trapped call before vigil received it makes the
//     kernel withdraw the notification and restart the call with a new id;
//     without SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV that can happen after
//     vigil carried the call out, and a second emulation doubles its effect.
//   - vigil's own threads get SIGURG (stormSupervisor). An ADDFD ioctl with
//     SECCOMP_ADDFD_FLAG_SEND marks the notification replied before the
//     watchee has taken the descriptor; if a signal interrupts vigil's wait,
//     the kernel drops the queued descriptor but leaves the reply state, so
//     the watchee's open returns 0 — no descriptor, no error — and vigil's
//     restarted ioctl gets EINPROGRESS or ENOENT (seen as git's "copy-fd:
//     write returned: Bad file descriptor").
//
// A doubled O_CREAT|O_EXCL open, mkdir, link or symlink fails with EEXIST,
// a doubled rename or unlink with ENOENT; storm counts those, any other
// failure (EINTR, an open whose descriptor is not the file it created) and
// what is left in its directory afterwards. All must be zero. The naive
// control (Config.NoRestartGuard) must show a failure, or the test proves
// nothing.
func TestSignalStormAppliesEachEmulatedCallOnce(t *testing.T) {
	testenv.RequirePrivileged(t)
	storm := testenv.Bin(t, "storm")
	base := t.TempDir()
	protected := filepath.Join(base, "protected")
	if err := os.Mkdir(protected, 0o755); err != nil {
		t.Fatal(err)
	}
	// Writes are denied under protected/, so every write elsewhere depends
	// on its path and is emulated (opens for writing installed with ADDFD).
	pol := fmt.Sprintf(`version: 1
rules:
  - name: protected-open
    syscalls: [open, openat, openat2, creat]
    match:
      path: [%[1]q]
      flags: { any: [O_WRONLY, O_RDWR, O_CREAT, O_TRUNC] }
    action: deny
    errno: EACCES
  - name: protected-tree
    syscalls: [mkdir, mkdirat, unlink, unlinkat, rmdir, rename, renameat, renameat2, link, linkat, symlink, symlinkat]
    match: { path: [%[1]q] }
    action: deny
    errno: EACCES
`, protected+"/**")
	newDir := func(name string) string {
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}

	// The classifier: with no supervisor the storm must find nothing.
	out, code := bare(t, storm, newDir("bare"), fmt.Sprint(stormThreads), "50", fmt.Sprint(stormIntervalUs))
	if code != 0 {
		t.Fatalf("storm bare: exit %d:\n%s", code, out)
	}
	if s := parseStorm(t, out); s.failures() != 0 || s.signals == 0 || s.calls != stormThreads*50*9 {
		t.Fatalf("storm bare: %v; want every call ok and signals handled:\n%s", s, out)
	}

	s, recs, took := runStorm(t, pol, newDir("guarded"), stormRounds)
	t.Logf("guarded: %v; %d emulated and %d withdrawn records; %v", s, recs.emulated, recs.withdrawn, took.Round(time.Second))
	if want := stormThreads * stormRounds * 9; s.calls != want {
		t.Fatalf("guarded: storm made %d calls, want %d", s.calls, want)
	}
	// Every call is emulated; a call answered wrongly may be recorded as
	// withdrawn instead.
	if s.signals == 0 || recs.emulated < s.calls-s.failures() {
		t.Errorf("guarded: %v, %d emulated records: the storm must be signalled and every call emulated", s, recs.emulated)
	}
	if s.failures() != 0 {
		t.Errorf("guarded: %v\nfirst reports:\n%s\nwithdrawn records:\n%s", s,
			strings.Join(s.reports, "\n"), strings.Join(recs.samples, "\n"))
	}

	// The naive control: the same storm without the guard must apply some
	// call twice (or answer it wrongly), or this test proves nothing.
	total := stormResult{}
	var totalRecs stormRecords
	var totalTook time.Duration
	for i := 0; total.failures() == 0 && total.calls < stormControlMax; i++ {
		s, recs, took := runStorm(t, pol, newDir(fmt.Sprintf("naive%d", i)), stormControlRounds,
			func(c *enforcer.RunConfig) { c.NoRestartGuard = true })
		total.calls += s.calls
		total.ok += s.ok
		total.doubled += s.doubled
		total.wrong += s.wrong
		total.leftover += s.leftover
		total.signals += s.signals
		total.reports = append(total.reports, s.reports...)
		totalRecs.emulated += recs.emulated
		totalRecs.withdrawn += recs.withdrawn
		totalRecs.samples = append(totalRecs.samples, recs.samples...)
		totalTook += took
	}
	t.Logf("naive control (NoRestartGuard): %v; %d emulated and %d withdrawn records; %v", total,
		totalRecs.emulated, totalRecs.withdrawn, totalTook.Round(time.Second))
	if total.failures() == 0 {
		t.Errorf("naive control: %v — no doubled effect without the restart guard, so the storm does not reach the window the guard closes", total)
	}
}
