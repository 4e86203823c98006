package bench

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vigilsec/vigil/cmd/vigil/internal/doctor"
	"github.com/vigilsec/vigil/enforcer/launch"
	"github.com/vigilsec/vigil/enforcer/reexec"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

func TestMain(m *testing.M) {
	// The filter-only mechanism starts watchees through vigil's init step,
	// and Run probes with the doctor's helper: both re-execute this binary.
	reexec.Run(launch.InitRole(), doctor.HelperRole())
	code := m.Run()
	if vigilDir != "" {
		os.RemoveAll(vigilDir)
	}
	os.Exit(code)
}

var (
	vigilOnce sync.Once
	vigilDir  string
	vigilErr  error
)

// buildVigil builds cmd/vigil for the vigil-* mechanisms, once per test
// binary.
func buildVigil(t *testing.T) string {
	t.Helper()
	vigilOnce.Do(func() {
		if vigilDir, vigilErr = os.MkdirTemp("", "vigil-bench-test-"); vigilErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(vigilDir, "vigil"), "./cmd/vigil")
		cmd.Dir = testenv.RepoRoot()
		if b, err := cmd.CombinedOutput(); err != nil {
			vigilErr = fmt.Errorf("%w\n%s", err, b)
		}
	})
	if vigilErr != nil {
		t.Fatalf("building vigil: %v", vigilErr)
	}
	return filepath.Join(vigilDir, "vigil")
}

// TestSmokeRunMeasuresEveryCell runs two workloads under three mechanisms
// with a fixed, small iteration count and one repetition. exec and connect
// cost tens of microseconds or more per operation, so even a single short
// run usually stands clear of start-up noise. The test asserts nothing about
// time: on a loaded machine one short run can even measure less than its own
// start-up, so it checks the figures are real numbers and the outcome and
// counts are what was asked for.
func TestSmokeRunMeasuresEveryCell(t *testing.T) {
	testenv.RequirePrivileged(t)
	vigil := buildVigil(t)
	res, err := Run(context.Background(), Config{
		Vigil:      vigil,
		Iterations: 300,
		Reps:       1,
		Workloads:  []string{"exec", "connect"},
		Mechanisms: []string{"bare", "filter-only", "vigil-passthrough"},
		Log:        zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 6 {
		t.Fatalf("%d results, want 2 workloads x 3 mechanisms:\n%+v", len(res.Results), res.Results)
	}
	for _, r := range res.Results {
		name := fmt.Sprintf("%s/%s", r.Workload, r.Mechanism)
		if r.Iterations != 300 || r.Reps != 1 || r.Outcome != "allowed" {
			t.Errorf("%s: %+v", name, r)
		}
		for _, v := range []float64{r.NsPerOpMedian, r.NsMin, r.NsMax, r.RatioBare} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Errorf("%s: figure that is not a number in %+v", name, r)
			}
		}
		if r.NsMin > r.NsPerOpMedian || r.NsPerOpMedian > r.NsMax {
			t.Errorf("%s: median outside [min, max] in %+v", name, r)
		}
	}
	if len(res.NotMeasured) != 0 {
		t.Errorf("not measured: %+v, want every mechanism measured", res.NotMeasured)
	}
	if !res.Doctor.CanRun || res.Version != SchemaVersion || res.Kernel == "" {
		t.Errorf("header: version %d kernel %q doctor can_run %v", res.Version, res.Kernel, res.Doctor.CanRun)
	}
}

// TestSmokeThreadsBesideAndMemory runs the rows issue 12 measures besides
// the per-call ones — getpid beside a vigil that watches something else,
// the thread workloads, vigil's memory over a run — with few iterations,
// one repetition and a few thousand calls. It checks their structure and
// outcomes, never their figures.
func TestSmokeThreadsBesideAndMemory(t *testing.T) {
	testenv.RequirePrivileged(t)
	vigil := buildVigil(t)
	const calls = 2000
	res, err := Run(context.Background(), Config{
		Vigil:       vigil,
		Iterations:  300,
		Reps:        1,
		Workloads:   []string{"getpid", MemoryWorkload},
		Mechanisms:  []string{"bare", "bare-beside-vigil", MemoryMechanism, "refsup"},
		MemoryCalls: calls,
		Log:         zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 8 || len(res.NotMeasured) != 0 {
		t.Fatalf("%d results, want 2 workloads x 4 mechanisms; not measured %+v:\n%+v", len(res.Results), res.NotMeasured, res.Results)
	}
	for _, r := range res.Results {
		name := fmt.Sprintf("%s/%s", r.Workload, r.Mechanism)
		wantThreads := 1
		if r.Workload == MemoryWorkload {
			wantThreads = 8
		}
		if r.Iterations != 300 || r.Outcome != "allowed" || r.Threads != wantThreads {
			t.Errorf("%s: %+v", name, r)
		}
		if math.IsNaN(r.OpsPerSec) || math.IsInf(r.OpsPerSec, 0) || r.OpsPerSec < 0 ||
			(r.NsPerOpMedian > 0) != (r.OpsPerSec > 0) {
			t.Errorf("%s: ops/s %v for %v ns/op", name, r.OpsPerSec, r.NsPerOpMedian)
		}
	}
	m := res.Memory
	if m == nil {
		t.Fatal("no memory measurement")
	}
	if m.Workload != MemoryWorkload || m.Mechanism != MemoryMechanism || m.Threads != 8 || m.Calls < calls {
		t.Errorf("memory: %+v", m)
	}
	if len(m.Rounds) != memoryRounds(calls) || m.Rounds[len(m.Rounds)-1].Calls != m.Calls {
		t.Errorf("memory rounds: %+v", m.Rounds)
	}
	for i, r := range m.Rounds {
		if r.RSSKiB <= 0 || r.AnonKiB <= 0 || r.AnonKiB > r.RSSKiB || (i > 0 && r.Calls <= m.Rounds[i-1].Calls) {
			t.Errorf("memory round %d: %+v", i, m.Rounds)
		}
	}
	// At least one reading per round; the peak is at least every reading.
	if m.RestKiB <= 0 || m.AfterKiB <= 0 || m.RestAnonKiB <= 0 || m.RestAnonKiB > m.RestKiB || m.AfterAnonKiB <= 0 ||
		m.LoadSamples < len(m.Rounds) || m.LoadKiBMedian > m.LoadKiBMax ||
		m.PeakKiB < m.LoadKiBMax || m.PeakKiB < m.RestKiB || m.PeakKiB < m.AfterKiB {
		t.Errorf("memory figures are inconsistent: %+v", m)
	}
	if m.GrowthKiB != m.AfterKiB-m.Rounds[0].RSSKiB || m.GrowthAnonKiB != m.AfterAnonKiB-m.Rounds[0].AnonKiB {
		t.Errorf("growth %d, want after %d - first round %d", m.GrowthKiB, m.AfterKiB, m.Rounds[0].RSSKiB)
	}
}

// privilegedEnv is the bench environment around a freshly built vigil, for
// tests that run single mechanisms; it is closed when the test ends.
func privilegedEnv(t *testing.T) *env {
	t.Helper()
	testenv.RequirePrivileged(t)
	vigil := buildVigil(t)
	rep := doctor.Probe()
	e, err := newEnv(Config{Vigil: vigil, Log: zerolog.New(zerolog.NewTestWriter(t))}, &rep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.close)
	return e
}

// TestBesideRefusesAVigilWithoutEBPF: bare-beside-vigil measures vigil's
// eBPF on an unwatched process, so a vigil beside the workload that loaded
// none (here: a policy that can never allow a bindable call) must fail the
// run rather than report a tax of zero.
func TestBesideRefusesAVigilWithoutEBPF(t *testing.T) {
	e := privilegedEnv(t)
	w := e.workload("getpid", 100)
	beside := Mechanism{Name: "bare-beside-vigil", kind: kindBeside, policy: besidePolicy, binding: true}
	if _, o, err := e.runOnce(context.Background(), beside, w); err != nil || o.ok != 100 {
		t.Fatalf("beside a vigil in its default mode: %+v, %v", o, err)
	}
	beside.policy = "passthrough"
	if _, _, err := e.runOnce(context.Background(), beside, w); err == nil || !strings.Contains(err.Error(), "no eBPF link") {
		t.Fatalf("beside a vigil without eBPF: %v, want an error about its missing eBPF", err)
	}
}

// TestRefsupBesideAnAttachedVigilRunsTheWorkloadUnderRefsup: the floor of
// a binding supervisor is refsup-resolve's own work with vigil's syscall
// tracepoints attached beside it, so the workload must run under refsup
// (which refuses the file it is told to deny: opens of it fail, where they
// succeed beside vigil alone) and the vigil beside it must hold its
// tracepoints attached (runBeside checks, or fails the run).
func TestRefsupBesideAnAttachedVigilRunsTheWorkloadUnderRefsup(t *testing.T) {
	e := privilegedEnv(t)
	m := mechanism(t, "refsup-resolve-beside-vigil-attached")
	if _, o, err := e.runOnce(context.Background(), m, e.workload("open", 100, e.allowed)); err != nil || o.ok != 100 {
		t.Fatalf("allowed opens: %+v, %v", o, err)
	}
	if _, o, err := e.runOnce(context.Background(), m, e.workload("open", 100, e.denied)); err != nil || o.failed != 100 {
		t.Fatalf("opens of the file refsup denies: %+v, %v; want all 100 refused", o, err)
	}
	alone := mechanism(t, "bare-beside-vigil-attached")
	if _, o, err := e.runOnce(context.Background(), alone, e.workload("open", 100, e.denied)); err != nil || o.ok != 100 {
		t.Fatalf("the same opens beside vigil alone: %+v, %v; want all 100 to succeed (the control)", o, err)
	}
}

// TestSettledRefusesABoundCall: vigil-allow-bound-settled measures a
// watched process while vigil's syscall tracepoints are detached, so a
// workload that makes a bound call (which attaches them) must fail the run
// rather than report the attached figure as the settled one.
func TestSettledRefusesABoundCall(t *testing.T) {
	e := privilegedEnv(t)
	settled := Mechanism{Name: "vigil-allow-bound-settled", kind: kindSettled, policy: "allow-unverified", binding: true}
	if _, o, err := e.runOnce(context.Background(), settled, e.workload("getpid", 100)); err != nil || o.ok != 100 {
		t.Fatalf("getpid, settled: %+v, %v", o, err)
	}
	_, o, err := e.runOnce(context.Background(), settled, e.workload("open", 100, e.allowed))
	if err == nil && o.ok != 100 {
		t.Fatalf("bound opens, settled: %+v, want 100 allowed opens", o)
	}
	if err == nil || !strings.Contains(err.Error(), "attached its syscall tracepoints") {
		t.Fatalf("bound opens, settled: %v, want an error about the reattached tracepoints", err)
	}
}

// TestRefsupTrapsWhatTheBenchPoliciesTrap: the reference's connect and exec
// rows compare with vigil's only if refsup traps those calls too. Its
// --count says how many notifications it answered; without the bench's
// --trap arguments it traps open and openat only (the control).
func TestRefsupTrapsWhatTheBenchPoliciesTrap(t *testing.T) {
	testenv.RequirePrivileged(t)
	rep := doctor.Probe()
	e, err := newEnv(Config{Log: zerolog.New(zerolog.NewTestWriter(t))}, &rep)
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	if e.refsup == "" {
		t.Fatal(e.noRefsup)
	}
	count := func(traps []string, w []string) (notified, named, emulated int) {
		t.Helper()
		argv := append(append(append([]string{e.refsup}, traps...), "--count", "--"), w...)
		var stderr bytes.Buffer
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v\n%s", argv, err, stderr.String())
		}
		if o, err := parseOutcome(out); err != nil || o.failed != 0 {
			t.Fatalf("%v: %+v, %v", argv, o, err)
		}
		if _, err := fmt.Sscanf(stderr.String(), "refsup: %d notifications, %d objects named, %d opens emulated", &notified, &named, &emulated); err != nil {
			t.Fatalf("%v: no count in %q", argv, stderr.String())
		}
		return notified, named, emulated
	}
	const n = 50
	connect := e.workload("connect", n, "127.0.0.1", strconv.Itoa(e.port))
	execs := e.workload("exec", 5, e.truePath)
	if got, _, _ := count(refsupTraps, connect); got < n {
		t.Errorf("refsup %v answered %d notifications for %d connects", refsupTraps, got, n)
	}
	if got, _, _ := count(nil, connect); got >= n {
		t.Errorf("refsup without --trap answered %d notifications for %d connects: the control traps connect", got, n)
	}
	with, _, _ := count(refsupTraps, execs)
	if without, _, _ := count(nil, execs); with < without+5 {
		t.Errorf("refsup %v answered %d notifications for 5 execs, %d without --trap: execve not trapped", refsupTraps, with, without)
	}
	// refsup-resolve names the object of every open it answers; plain
	// refsup names none.
	opens := e.workload("open", n, e.allowed)
	resolving := mechanism(t, "refsup-resolve").refsupArgs
	if got, named, _ := count(append(slices.Clone(refsupTraps), resolving...), opens); named < n || named > got {
		t.Errorf("refsup %v named %d objects in %d notifications for %d opens", resolving, named, got, n)
	}
	if _, named, _ := count(refsupTraps, opens); named != 0 {
		t.Errorf("refsup without --resolve named %d objects", named)
	}
	// refsup-emulate performs every open for writing itself and installs
	// the file in the watchee (count fails the run unless every open succeeded);
	// plain refsup continues them all.
	writes := e.workload("write", n, e.allowed)
	emulating := mechanism(t, "refsup-emulate").refsupArgs
	if got, _, emulated := count(append(slices.Clone(refsupTraps), emulating...), writes); emulated < n || emulated > got {
		t.Errorf("refsup %v installed %d files in %d notifications for %d opens", emulating, emulated, got, n)
	}
	if _, _, emulated := count(refsupTraps, writes); emulated != 0 {
		t.Errorf("refsup without --emulate installed %d files", emulated)
	}
	// refsup-resolve-emulate does both for every open for writing.
	both := mechanism(t, "refsup-resolve-emulate").refsupArgs
	if got, named, emulated := count(append(slices.Clone(refsupTraps), both...), writes); emulated < n || emulated > got || named < n || named > got {
		t.Errorf("refsup %v named %d objects and installed %d files in %d notifications for %d opens", both, named, emulated, got, n)
	}
}

// mechanism returns the mechanism called name, as --mechanisms finds it.
func mechanism(t *testing.T, name string) Mechanism {
	t.Helper()
	ms, err := selectMechanisms([]string{name})
	if err != nil {
		t.Fatal(err)
	}
	return ms[0]
}
