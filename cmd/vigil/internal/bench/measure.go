package bench

import (
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Iteration bounds for calibration.
const (
	minIterations = 10
	maxIterations = 50_000_000
)

// bencher runs the measurements of one Run.
type bencher struct {
	cfg  Config
	env  *env
	prog *progress
	// others are the processes outside the bench seen holding eBPF on
	// the syscall tracepoints (Results.OtherTracepoints).
	others map[string]bool
}

// cell is one workload under one mechanism, with its measurements so far.
type cell struct {
	w     Workload
	m     Mechanism
	want  string // "allowed" or "denied"
	n     int
	full  []float64 // ns per run of n iterations, one per repetition
	zeros []float64 // ns per run of 0 iterations
}

func (c *cell) label() string { return c.w.Name + " · " + c.m.Name }

// measureAll prepares every cell (warm-up, iteration count), then runs the
// repetitions round-robin over the cells: a burst of load from elsewhere
// on the machine then spreads over all mechanisms instead of skewing the
// one that happened to run at that moment.
func (b *bencher) measureAll(ctx context.Context, cells []*cell) error {
	for _, c := range cells {
		b.prog.show(c.label() + " · calibrating")
		if err := b.prepare(ctx, c); err != nil {
			return fmt.Errorf("measuring %s under %s: %w", c.w.Name, c.m.Name, err)
		}
		b.prog.advance()
	}
	for i := range b.cfg.Reps {
		for _, c := range cells {
			b.prog.show(fmt.Sprintf("rep %d/%d · %s", i+1, b.cfg.Reps, c.label()))
			f, err := b.run(ctx, c, c.n)
			if err == nil {
				var z time.Duration
				z, err = b.run(ctx, c, 0)
				c.full = append(c.full, float64(f.Nanoseconds()))
				c.zeros = append(c.zeros, float64(z.Nanoseconds()))
			}
			if err != nil {
				return fmt.Errorf("measuring %s under %s: %w", c.w.Name, c.m.Name, err)
			}
			b.prog.advance()
		}
		b.lookForOthers()
	}
	return nil
}

// lookForOthers notes the processes other than this one that hold an eBPF
// link on sys_enter or sys_exit. It runs between repetitions, when none of
// the bench's own children is alive. Links of other types (tp_btf, fentry)
// do not name the tracepoint in fdinfo and are not seen.
func (b *bencher) lookForOthers() {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	self := os.Getpid()
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		for _, l := range bpfLinks(pid) {
			if !strings.Contains(l, "tp_name: sys_enter") && !strings.Contains(l, "tp_name: sys_exit") {
				continue
			}
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			b.others[fmt.Sprintf("%s[%d]", strings.TrimSpace(string(comm)), pid)] = true
			break
		}
	}
}

// otherList returns the processes lookForOthers saw, sorted.
func (b *bencher) otherList() []string {
	out := slices.Collect(maps.Keys(b.others))
	slices.Sort(out)
	return out
}

// result summarizes a measured cell.
func (c *cell) result() Result {
	r := summarize(c.full, c.zeros, c.n)
	r.Workload, r.Mechanism, r.Outcome, r.Threads = c.w.Name, c.m.Name, c.want, c.w.Threads
	if r.NsPerOpMedian > 0 {
		r.OpsPerSec = math.Round(1e9 / r.NsPerOpMedian)
	}
	return r
}

func (b *bencher) run(ctx context.Context, c *cell, n int) (time.Duration, error) {
	d, o, err := b.env.runOnce(ctx, c.m, c.w.args(b.env, n))
	if err != nil {
		return 0, err
	}
	return d, checkOutcome(o, n, c.want)
}

// prepare warms the cell up (page cache, dentries, binaries) and sets its
// iteration count: the one given, or a calibrated one.
func (b *bencher) prepare(ctx context.Context, c *cell) error {
	zero, err := b.run(ctx, c, 0)
	if err != nil {
		return err
	}
	if b.cfg.Iterations > 0 {
		c.n = b.cfg.Iterations
		_, err := b.run(ctx, c, c.n)
		return err
	}
	c.n, err = b.calibrate(ctx, c, zero)
	b.cfg.Log.Debug().Str("workload", c.w.Name).Str("mechanism", c.m.Name).Int("iterations", c.n).Msg("calibrated")
	return err
}

// calibrate grows the iteration count until a run takes a quarter of the
// target beyond start-up, then scales it to the target. The target is at
// least twice the start-up: mechanisms that load eBPF start in hundreds of
// milliseconds, and start-up's own spread must stay small next to the
// measured work or the subtraction is noise.
func (b *bencher) calibrate(ctx context.Context, c *cell, zero time.Duration) (int, error) {
	target := max(b.cfg.RunTime, 2*zero)
	n := max(c.w.guess, minIterations)
	for {
		d, err := b.run(ctx, c, n)
		if err != nil {
			return 0, err
		}
		net := d - zero
		if net >= target/4 || n >= maxIterations {
			if net <= 0 {
				return n, nil
			}
			return niceCount(float64(n) * float64(target) / float64(net)), nil
		}
		grow := 10.0
		if net > 0 {
			grow = math.Min(100, math.Max(2, float64(target)/2/float64(net)))
		}
		n = min(int(float64(n)*grow), maxIterations)
	}
}

// niceCount rounds n to two significant digits within the iteration bounds,
// so the tables show 180000 rather than 178342.
func niceCount(n float64) int {
	if n < minIterations {
		return minIterations
	}
	if n > maxIterations {
		return maxIterations
	}
	p := math.Pow(10, math.Floor(math.Log10(n))-1)
	return int(math.Round(n/p) * p)
}

// checkOutcome requires every operation to have had the expected result: a
// benchmark that silently measured refusals (or grants) would mislead.
func checkOutcome(o outcome, n int, want string) error {
	if o.ok+o.failed != n {
		return fmt.Errorf("workload reported %d operations, want %d", o.ok+o.failed, n)
	}
	switch {
	case want == "allowed" && o.failed > 0:
		return fmt.Errorf("%d of %d operations failed (first: %s), want all allowed", o.failed, n, o.first)
	case want == "denied" && o.ok > 0:
		return fmt.Errorf("%d of %d operations succeeded, want all denied", o.ok, n)
	}
	return nil
}
