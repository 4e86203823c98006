// Package bench measures what supervision costs per syscall: fixed
// micro-workloads (a C program built on the fly with gcc) run in child
// processes under each mechanism — bare, vigil's seccomp filter alone,
// `vigil run` with deny / allow / passthrough policies, the C reference
// supervisor and strace.
//
// Like scripts/bench-open.sh, every measurement times whole child processes:
// one run with N iterations and one with 0 per repetition, so ns/op =
// (time(N) − median time(0)) / N and start-up costs (fork, exec, filter
// install, vigil's own start) do not leak into the per-operation figure.
// With no iteration count given, N is calibrated per workload and mechanism
// so that one run takes about Config.RunTime.
//
// Two measurements are not per-operation times of one child: the
// open-threads-T workloads report throughput (operations per second of all
// T threads together), and the memory measurement (memory.go) keeps one
// vigil running under the open-threads-8 load for Config.MemoryCalls
// trapped calls and reads its resident set size.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigilsec/vigil/cmd/vigil/internal/doctor"
)

// Config says what to measure and how.
type Config struct {
	// Vigil is the vigil binary the vigil-* mechanisms run; empty skips
	// them with a note.
	Vigil string
	// Refsup is the C reference supervisor: a binary, or a .c file to
	// build. Empty looks for "refsup" beside Vigil, then for
	// scripts/refsup.c in the source tree this package was built from.
	Refsup string
	// Iterations per run; 0 calibrates per workload and mechanism.
	Iterations int
	// Reps is the number of repetitions (default 5).
	Reps int
	// RunTime is the calibration target for one run (default 250ms).
	RunTime time.Duration
	// Workloads and Mechanisms select by name; empty means all. By default
	// some pairs are left out (the thread workloads run only under bare,
	// vigil-allow-bound and refsup; bare-beside-vigil only runs getpid);
	// when both lists are given, every pair of them is measured but those
	// a strict mechanism cannot measure (vigil-allow-bound-settled runs
	// getpid only).
	Workloads  []string
	Mechanisms []string
	// MemoryCalls is the number of trapped calls vigil's memory is
	// followed over, under the open-threads-8 load in vigil-allow-bound;
	// 0 skips the memory measurement. It runs when both are selected.
	MemoryCalls int
	// Progress, when set, receives a progress bar (a terminal).
	Progress io.Writer
	// Log receives diagnostics.
	Log zerolog.Logger
	// Doctor is embedded in the results; nil runs doctor.Probe.
	Doctor *doctor.Report
}

// Defaults used when Config leaves them zero.
const (
	DefaultReps        = 5
	DefaultRunTime     = 250 * time.Millisecond
	DefaultMemoryCalls = 1_000_000
)

// ErrUnknownName is returned for a workload or mechanism name that does not
// exist.
var ErrUnknownName = errors.New("unknown name")

// Run measures every selected workload under every selected mechanism and
// returns the results. Mechanisms this machine or build cannot measure are
// listed in Results.NotMeasured with the reason.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	works, err := selectWorkloads(cfg.Workloads)
	if err != nil {
		return nil, err
	}
	mechs, err := selectMechanisms(cfg.Mechanisms)
	if err != nil {
		return nil, err
	}
	rep := cfg.Doctor
	if rep == nil {
		r := doctor.Probe()
		rep = &r
	}
	res := newResults(*rep)

	e, err := newEnv(cfg, rep)
	if err != nil {
		return nil, err
	}
	defer e.close()

	runnable := keepRunnable(e, mechs, res, cfg.Log)
	cells := cellsFor(works, runnable, len(cfg.Workloads) > 0 && len(cfg.Mechanisms) > 0)
	noteStrictWithoutCells(runnable, cells, res, cfg.Log)
	mem := memoryMechanism(cfg, works, runnable)
	steps := len(cells) * (1 + cfg.Reps)
	if mem != nil {
		steps += memoryRounds(cfg.MemoryCalls)
	}
	b := &bencher{cfg: cfg, env: e, prog: newProgress(cfg.Progress, steps), others: map[string]bool{}}
	defer b.prog.finish()
	b.lookForOthers()
	if err := b.measureAll(ctx, cells); err != nil {
		return nil, err
	}
	for _, c := range cells {
		res.Results = append(res.Results, c.result())
	}
	res.fillRatios()
	if mem != nil {
		if res.Memory, err = b.measureMemory(ctx, *mem); err != nil {
			return nil, fmt.Errorf("measuring vigil's memory: %w", err)
		}
	}
	b.lookForOthers()
	res.OtherTracepoints = b.otherList()
	return res, nil
}

// withDefaults returns cfg with the defaults for what it leaves zero, or
// an error for a negative count.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Reps <= 0 {
		cfg.Reps = DefaultReps
	}
	if cfg.RunTime <= 0 {
		cfg.RunTime = DefaultRunTime
	}
	if cfg.Iterations < 0 {
		return cfg, fmt.Errorf("iterations must be >= 0, got %d", cfg.Iterations)
	}
	if cfg.MemoryCalls < 0 {
		return cfg, fmt.Errorf("memory calls must be >= 0, got %d", cfg.MemoryCalls)
	}
	return cfg, nil
}

// keepRunnable returns the mechanisms that can run here and records in res
// why the others are not measured.
func keepRunnable(e *env, mechs []Mechanism, res *Results, log zerolog.Logger) []Mechanism {
	var runnable []Mechanism
	for _, m := range mechs {
		if why := e.unavailable(m); why != "" {
			res.NotMeasured = append(res.NotMeasured, NotMeasured{Mechanism: m.Name, Reason: why})
			log.Info().Str("mechanism", m.Name).Str("reason", why).Msg("not measured")
			continue
		}
		runnable = append(runnable, m)
	}
	return runnable
}

// noteStrictWithoutCells records in res the strict mechanisms none of whose
// workloads was selected: named, they would otherwise vanish silently.
func noteStrictWithoutCells(mechs []Mechanism, cells []*cell, res *Results, log zerolog.Logger) {
	for _, m := range mechs {
		if !m.strict || slices.ContainsFunc(cells, func(c *cell) bool { return c.m.Name == m.Name }) {
			continue
		}
		why := "measures only " + strings.Join(m.workloads, ", ") + ", which was not selected"
		res.NotMeasured = append(res.NotMeasured, NotMeasured{Mechanism: m.Name, Reason: why})
		log.Info().Str("mechanism", m.Name).Str("reason", why).Msg("not measured")
	}
}

// cellsFor returns the workload × mechanism pairs to measure, each with the
// outcome its calls must have; named (both lists given) pairs them all.
func cellsFor(works []Workload, mechs []Mechanism, named bool) []*cell {
	var cells []*cell
	for _, w := range works {
		for _, m := range mechs {
			if !pairs(w, m, named) {
				continue
			}
			want := "allowed"
			if m.denied(w) {
				want = "denied"
			}
			cells = append(cells, &cell{w: w, m: m, want: want})
		}
	}
	return cells
}

// memoryMechanism returns the mechanism the memory measurement runs, or
// nil when it is not asked for: it needs vigil-allow-bound and the
// open-threads-8 workload selected, and a number of calls.
func memoryMechanism(cfg Config, works []Workload, runnable []Mechanism) *Mechanism {
	if cfg.MemoryCalls <= 0 || !slices.ContainsFunc(works, func(w Workload) bool { return w.Name == MemoryWorkload }) {
		return nil
	}
	i := slices.IndexFunc(runnable, func(m Mechanism) bool { return m.Name == MemoryMechanism })
	if i < 0 {
		return nil
	}
	return &runnable[i]
}

func newResults(rep doctor.Report) *Results {
	host, _ := os.Hostname()
	return &Results{
		Version:  SchemaVersion,
		Time:     time.Now().UTC().Truncate(time.Second),
		Kernel:   rep.Kernel,
		Hostname: host,
		CPUs:     runtime.NumCPU(),
		LoadAvg:  loadAvg(),
		Doctor:   rep,
	}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
