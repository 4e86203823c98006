package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/enforcer/launch"
)

// resultPrefix starts the workload's result line (testdata/workload.c).
const resultPrefix = "vigil-bench-result "

// outcome is what a workload run reported.
type outcome struct {
	ok, failed int
	first      string
}

// argv returns the command that runs workload argv w under m; for
// bare-beside-vigil that is the workload alone (the vigil beside it is
// companionArgv's), for refsup-resolve-beside-vigil-attached the workload
// under refsup.
func (e *env) argv(m Mechanism, w []string) []string {
	switch m.kind {
	case kindBeside:
		if m.refsupArgs != nil {
			return e.refsupArgv(m, w)
		}
	case kindVigil:
		return e.vigilArgv(m, w)
	case kindSettled:
		// The workload waits for the go-ahead (testdata/workload.c).
		return e.vigilArgv(m, append([]string{w[0], "wait"}, w[1:]...))
	case kindRefsup:
		return e.refsupArgv(m, w)
	case kindStrace:
		a := append([]string{"strace"}, m.straceArgs...)
		return append(append(a, "--"), w...)
	}
	return w
}

// refsupArgv returns the C reference supervisor's command around argv w.
func (e *env) refsupArgv(m Mechanism, w []string) []string {
	a := append(append([]string{e.refsup}, refsupTraps...), m.refsupArgs...)
	return append(append(a, "--deny", e.denied, "--"), w...)
}

// vigilArgv returns the vigil command of mechanism m around argv w.
func (e *env) vigilArgv(m Mechanism, w []string) []string {
	sub := m.sub
	if sub == "" {
		sub = "run"
	}
	a := []string{e.cfg.Vigil, sub}
	if m.policy != "" {
		// Denials are audited as in production (info level), to a
		// buffered sink that costs no disk I/O.
		a = append(a, "--policy", e.policies[m.policy], "--log", os.DevNull, "--log-level", "info")
	}
	if sub == "run" && !m.binding && e.vigilUnverified {
		a = append(a, "--unverified")
	}
	a = append(a, m.vigilArgs...)
	return append(append(a, "--"), w...)
}

// runOnce runs workload argv w under m and returns the wall-clock time from
// just before the first process starts to just after the last is reaped.
func (e *env) runOnce(ctx context.Context, m Mechanism, w []string) (time.Duration, outcome, error) {
	if err := ctx.Err(); err != nil {
		return 0, outcome{}, err
	}
	stderr, err := os.Create(e.dir + "/stderr")
	if err != nil {
		return 0, outcome{}, fmt.Errorf("creating stderr file: %w", err)
	}
	defer stderr.Close()
	r, wr, err := os.Pipe()
	if err != nil {
		return 0, outcome{}, fmt.Errorf("creating stdout pipe: %w", err)
	}
	outc := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(r)
		r.Close()
		outc <- b
	}()
	var elapsed time.Duration
	switch m.kind {
	case kindFilter:
		elapsed, err = e.runFiltered(w, wr, stderr)
	case kindBeside:
		elapsed, err = e.runBeside(ctx, m, w, wr, stderr)
	case kindSettled:
		elapsed, err = e.runSettled(ctx, m, w, wr)
	default:
		elapsed, err = runCommand(ctx, e.argv(m, w), wr, stderr)
	}
	wr.Close()
	stdout := <-outc
	if err != nil {
		return 0, outcome{}, fmt.Errorf("%s: %w%s", strings.Join(e.argv(m, w), " "), err, tail(e.dir+"/stderr"))
	}
	o, err := parseOutcome(stdout)
	if err == nil && m.verify != nil {
		err = m.verify(e.dir + "/stderr")
	}
	if err != nil {
		return 0, outcome{}, fmt.Errorf("%s: %w%s", strings.Join(e.argv(m, w), " "), err, tail(e.dir+"/stderr"))
	}
	return elapsed, o, nil
}

func runCommand(ctx context.Context, argv []string, stdout, stderr *os.File) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	start := time.Now()
	err := cmd.Run()
	return time.Since(start), err
}

// runFiltered starts the workload through vigil's own init step with a
// filter that notifies nothing, so only the cBPF program runs per syscall.
// The listener is never read: nothing is ever sent to it.
func (e *env) runFiltered(w []string, stdout, stderr *os.File) (time.Duration, error) {
	start := time.Now()
	wt, err := launch.Start(launch.Config{
		Path: w[0], Args: w, Env: os.Environ(), Program: e.filterProg,
		Stdout: stdout, Stderr: stderr,
	})
	if err != nil {
		return 0, err
	}
	defer func() {
		if l := wt.Listener(); l != nil {
			l.Close()
		}
	}()
	if err := wt.Proceed(); err != nil {
		wt.Abort()
		return 0, err
	}
	code, err := wt.Wait()
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	if code != 0 {
		return 0, fmt.Errorf("exit status %d", code)
	}
	return elapsed, nil
}

func parseOutcome(stdout []byte) (outcome, error) {
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), resultPrefix)
		if !ok {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			break
		}
		okN, err1 := strconv.Atoi(f[0])
		failed, err2 := strconv.Atoi(f[1])
		if err := errors.Join(err1, err2); err != nil {
			break
		}
		return outcome{ok: okN, failed: failed, first: f[2]}, nil
	}
	return outcome{}, fmt.Errorf("no %q line in the workload's output %q", strings.TrimSpace(resultPrefix), stdout)
}

// tail returns the last lines of a file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return "\nstderr:\n  " + strings.Join(lines, "\n  ")
}
