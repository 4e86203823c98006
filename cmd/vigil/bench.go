package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/cmd/vigil/internal/bench"
)

// benchOptions are bench's flags: the bench.Config they fill directly, and
// the rest.
type benchOptions struct {
	cfg                                      bench.Config
	jsonFile, svgFile, workloads, mechanisms string
	verbose                                  bool
}

func newBenchCmd() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench [--iterations N] [--reps R] [--json FILE] [--svg FILE] [--workloads LIST] [--mechanisms LIST] [--memory-calls N]",
		Short: "Measure what each supervision mechanism costs per syscall",
		Long: `Run micro-workloads (getpid, open, write, open-denied, exec, connect; a C
program built with gcc) bare, under vigil's seccomp filter alone, under vigil
run with deny / allow-unverified / passthrough policies and in its default
mode, under the C reference supervisor (scripts/refsup.c; also as the floor of
naming the object, refsup-resolve, of emulating an open with ADDFD,
refsup-emulate, and of both, refsup-resolve-emulate) and under strace, and
print ns per operation: the median of the repetitions with min and max, and
ratios to bare and to the C reference. Each repetition times a run of N
iterations and one of 0, so start-up costs are subtracted. Without
--iterations, N is calibrated so one run takes about --run-time.

Also measured by default: getpid in a process vigil does not watch while a
vigil in its default mode runs beside it (bare-beside-vigil: the host-wide
cost of vigil's eBPF); getpid in a watched process once vigil has detached
its syscall tracepoints (vigil-allow-bound-settled); the throughput of 1, 2, 4 and 8 threads doing opens
(open-threads-T) bare, in vigil's default mode and under the C reference; and
vigil's resident set size at rest, under the 8-thread load and after
--memory-calls trapped calls. Needs root and gcc; strace is optional.

'vigil bench compare A.json B.json [C.json...]' compares --json files, also
across kernels.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBench(o) },
	}
	addBenchFlags(cmd, &o)
	cmd.AddCommand(newBenchCompareCmd())
	return cmd
}

func addBenchFlags(cmd *cobra.Command, o *benchOptions) {
	f := cmd.Flags()
	f.IntVar(&o.cfg.Iterations, "iterations", 0, "iterations per run (default: calibrated per workload and mechanism)")
	f.IntVar(&o.cfg.Reps, "reps", bench.DefaultReps, "repetitions per workload and mechanism")
	f.DurationVar(&o.cfg.RunTime, "run-time", bench.DefaultRunTime, "calibration target for one run")
	f.StringVar(&o.jsonFile, "json", "", "write the results, with the doctor report, to FILE as JSON")
	f.StringVar(&o.svgFile, "svg", "", "write a bar chart to FILE (SVG)")
	f.StringVar(&o.workloads, "workloads", "", "comma-separated workloads (default all: "+names(bench.Workloads())+")")
	f.StringVar(&o.mechanisms, "mechanisms", "", "comma-separated mechanisms (default all: "+mechNames(bench.Mechanisms())+")")
	f.IntVar(&o.cfg.MemoryCalls, "memory-calls", bench.DefaultMemoryCalls, "trapped calls over which vigil's memory is followed, under the "+bench.MemoryWorkload+" load in "+bench.MemoryMechanism+" (0 skips)")
	f.StringVar(&o.cfg.Refsup, "refsup", "", "C reference supervisor: a binary or scripts/refsup.c (default: refsup beside vigil, else the source tree's)")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "log calibration and skipped mechanisms")
}

// runBench is bench: it measures and writes the table on stdout and the
// files asked for.
func runBench(o benchOptions) error {
	cfg, err := o.config()
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Run(ctx, cfg)
	if errors.Is(err, bench.ErrUnknownName) {
		return &exitError{code: 2, err: err}
	}
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	if err := writeBenchResults(res, o.jsonFile, o.svgFile); err != nil {
		return &exitError{code: 1, err: err}
	}
	return nil
}

// config checks the numbers asked for and completes the bench.Config.
func (o benchOptions) config() (bench.Config, error) {
	cfg := o.cfg
	// Usage errors exit 2, like every other command's; a zero that
	// silently became a default would measure something else than asked.
	switch {
	case cfg.Reps < 1:
		return cfg, fmt.Errorf("--reps must be at least 1, got %d", cfg.Reps)
	case cfg.Iterations < 0:
		return cfg, fmt.Errorf("--iterations must be at least 0 (0 calibrates), got %d", cfg.Iterations)
	case cfg.RunTime <= 0:
		return cfg, fmt.Errorf("--run-time must be positive, got %v", cfg.RunTime)
	case cfg.MemoryCalls < 0:
		return cfg, fmt.Errorf("--memory-calls must be at least 0 (0 skips the memory measurement), got %d", cfg.MemoryCalls)
	}
	self, err := os.Executable()
	if err != nil {
		return cfg, fmt.Errorf("finding vigil's own executable: %w", err)
	}
	cfg.Vigil = self
	cfg.Workloads, cfg.Mechanisms = splitList(o.workloads), splitList(o.mechanisms)
	if isatty.IsTerminal(os.Stderr.Fd()) {
		cfg.Progress = os.Stderr
	}
	level := zerolog.WarnLevel
	if o.verbose {
		level = zerolog.DebugLevel
	}
	cfg.Log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly}).
		Level(level).With().Timestamp().Logger()
	return cfg, nil
}

// writeBenchResults writes the table on stdout, and the JSON and SVG
// files when named.
func writeBenchResults(res *bench.Results, jsonFile, svgFile string) error {
	if err := res.WriteTable(os.Stdout); err != nil {
		return err
	}
	if jsonFile != "" {
		if err := res.WriteFile(jsonFile); err != nil {
			return err
		}
	}
	if svgFile != "" {
		return res.WriteSVGFile(svgFile)
	}
	return nil
}

func newBenchCompareCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "compare A.json B.json [C.json...]",
		Short: "Compare vigil bench --json files: ns/op, each run's ratio to its own bare run, and B/A",
		Long: `With two files: each workload × mechanism's ns/op in A and B, each one's
ratio to the same run's bare ns/op, and the ratio B/A. With more: one column
per file with ns/op and, in parentheses, the ratio to that run's bare ns/op.
Across kernels (or guests under emulation) only the ratios to bare compare.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			runs := make([]*bench.Results, len(args))
			for i, a := range args {
				r, err := bench.ReadFile(a)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				runs[i] = r
			}
			var err error
			if len(runs) == 2 {
				err = bench.WriteCompare(os.Stdout, args[0], runs[0], args[1], runs[1])
			} else {
				err = bench.WriteCompareRuns(os.Stdout, args, runs)
			}
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			return nil
		},
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func names(ws []bench.Workload) string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Name
	}
	return strings.Join(out, ",")
}

func mechNames(ms []bench.Mechanism) string {
	var out []string
	for _, m := range ms {
		if m.Unavailable == "" {
			out = append(out, m.Name)
		}
	}
	return strings.Join(out, ",")
}
