package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/enforcer/procinfo"
)

// Time limits of a long-lived supervised workload: vigil loads its eBPF in
// well under a second, but the machine may be busy.
const (
	readyTimeout = time.Minute
	stopTimeout  = 30 * time.Second
)

// readyLine is what the serve workload prints once it runs
// (testdata/workload.c).
const readyLine = "vigil-bench-ready"

// supervised is a vigil run whose watchee is the workload's serve mode: a
// long-lived process that runs rounds of opens when asked and otherwise
// idles in read(2), so vigil can be observed (memory, attached eBPF) while
// nothing else of the bench runs under it.
type supervised struct {
	cmd    *exec.Cmd
	stdin  *os.File // the watchee's requests; closing it ends the watchee
	stdout *os.File // read into lines until closed
	lines  chan string
	done   chan error
	stderr string
}

// startSupervised starts vigil mechanism m around `workload serve threads
// ALLOWED` and returns once the watchee runs: then vigil's filter is
// installed, its notify loop serves and its eBPF (when the mechanism has
// it) is attached.
func (e *env) startSupervised(ctx context.Context, m Mechanism, threads int) (*supervised, error) {
	return e.startWatched(ctx, e.vigilArgv(m, e.workload("serve", threads, e.allowed)))
}

// startWatched starts argv, a vigil around a workload that prints the ready
// line, and returns once that line came.
func (e *env) startWatched(ctx context.Context, argv []string) (*supervised, error) {
	s := &supervised{lines: make(chan string, 16), done: make(chan error, 1), stderr: filepath.Join(e.dir, "supervised-stderr")}
	stderr, err := os.Create(s.stderr)
	if err != nil {
		return nil, fmt.Errorf("creating stderr file: %w", err)
	}
	defer stderr.Close()
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("creating stdin pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("creating stdout pipe: %w", err)
	}
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Stdin, s.cmd.Stdout, s.cmd.Stderr = inR, outW, stderr
	err = s.cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("starting %s: %w", strings.Join(argv, " "), err)
	}
	s.stdin, s.stdout = inW, outR
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	go func() { s.done <- s.cmd.Wait() }()
	if _, err := s.line(ctx, readyLine, readyTimeout); err != nil {
		s.kill()
		return nil, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return s, nil
}

// pid is vigil's process id.
func (s *supervised) pid() int { return s.cmd.Process.Pid }

// line waits for the next stdout line that starts with prefix and returns
// it; other lines are skipped.
func (s *supervised) line(ctx context.Context, prefix string, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				return "", fmt.Errorf("vigil or its watchee ended before printing %q%s", prefix, tail(s.stderr))
			}
			if strings.HasPrefix(l, prefix) {
				return l, nil
			}
		case <-t.C:
			return "", fmt.Errorf("no %q line within %v%s", prefix, timeout, tail(s.stderr))
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// round asks the watchee for n opens over its threads and returns what
// they got.
func (s *supervised) round(ctx context.Context, n int, timeout time.Duration) (outcome, error) {
	if _, err := fmt.Fprintf(s.stdin, "%d\n", n); err != nil {
		return outcome{}, fmt.Errorf("asking the watchee for %d opens: %w", n, err)
	}
	l, err := s.line(ctx, strings.TrimSpace(resultPrefix), timeout)
	if err != nil {
		return outcome{}, err
	}
	return parseOutcome([]byte(l))
}

// stop ends the watchee (end of its stdin) and waits for vigil, which must
// exit 0: a vigil that died or failed while it was observed would make the
// figures meaningless.
func (s *supervised) stop() error {
	s.stdin.Close()
	select {
	case err := <-s.done:
		// A process vigil left behind could hold the pipe open: closing
		// our end ends the reader in any case.
		s.stdout.Close()
		if err != nil {
			return fmt.Errorf("vigil beside the workload: %w%s", err, tail(s.stderr))
		}
		return nil
	case <-time.After(stopTimeout):
		s.kill()
		return fmt.Errorf("vigil did not exit within %v of its watchee's stdin closing%s", stopTimeout, tail(s.stderr))
	}
}

// kill ends vigil at once (its watchee follows when its stdin closes).
func (s *supervised) kill() {
	s.stdin.Close()
	_ = s.cmd.Process.Kill()
	<-s.done
	s.stdout.Close()
}

// runBeside times workload argv w, run bare or under refsup (e.argv), while
// a vigil of mechanism m supervises an idle process. vigil starts before the
// timing and stops after it; only its presence is measured.
func (e *env) runBeside(ctx context.Context, m Mechanism, w []string, stdout, stderr *os.File) (time.Duration, error) {
	s, err := e.startSupervised(ctx, m, 1)
	if err != nil {
		return 0, err
	}
	if n := len(bpfLinks(s.pid())); n == 0 {
		s.kill()
		return 0, errors.New("the vigil beside the workload holds no eBPF link: the figure would not include vigil's eBPF (does its policy still load it?)")
	}
	if err := waitSyscallTracepoints(s.pid(), m.syscallTracepoints); err != nil {
		s.kill()
		return 0, err
	}
	// vigil's own start (loading eBPF, the Go runtime's collection after
	// it) must not compete with the workload for the CPUs: only the
	// presence of its programs is measured.
	before, quiet := waitQuiet(s.pid())
	d, err := runCommand(ctx, e.argv(m, w), stdout, stderr)
	after, _ := cpuTicks(s.pid())
	e.cfg.Log.Debug().Bool("quiet", quiet).Int("vigil_ticks_during_run", after-before).Dur("elapsed", d).Msg("ran beside vigil")
	if serr := s.stop(); err == nil {
		err = serr
	}
	return d, err
}

// runSettled times workload argv w watched by vigil mechanism m, started
// only once vigil has settled: its syscall tracepoints detached (after the
// workload's own exec, bound, they go within two --detach-idle) and its
// threads idle. The time runs from the go-ahead on the workload's stdin to
// its result line, which is copied to stdout. The tracepoints must still be
// detached then: the workload made no bound call. (The workload waits for the
// end of its stdin after that line, so vigil is still up when its links are
// read: a vigil on its way out has none.)
func (e *env) runSettled(ctx context.Context, m Mechanism, w []string, stdout *os.File) (time.Duration, error) {
	s, err := e.startWatched(ctx, e.argv(m, w))
	if err != nil {
		return 0, err
	}
	if len(bpfLinks(s.pid())) == 0 {
		s.kill()
		return 0, errors.New("the vigil around the workload holds no eBPF link: it does not run in its default mode")
	}
	if err := waitSyscallTracepoints(s.pid(), false); err != nil {
		s.kill()
		return 0, err
	}
	waitQuiet(s.pid())
	start := time.Now()
	if _, err := s.stdin.Write([]byte("\n")); err != nil {
		s.kill()
		return 0, fmt.Errorf("starting the workload: %w", err)
	}
	l, err := s.line(ctx, strings.TrimSpace(resultPrefix), readyTimeout)
	d := time.Since(start)
	if err == nil && hasSyscallTracepoints(s.pid()) {
		err = errors.New("vigil attached its syscall tracepoints while the settled workload ran: the figure is not the settled one")
	}
	if err != nil {
		s.kill()
		return 0, err
	}
	if _, err := fmt.Fprintln(stdout, l); err != nil {
		s.kill()
		return 0, err
	}
	return d, s.stop()
}

// hasSyscallTracepoints reports whether vigil process pid holds its
// sys_enter link.
func hasSyscallTracepoints(pid int) bool {
	return slices.ContainsFunc(bpfLinks(pid), func(l string) bool { return strings.Contains(l+" ", "tp_name: sys_enter ") })
}

// waitSyscallTracepoints waits up to syscallTracepointsWait until vigil
// process pid holds its sys_enter link (attached) or does not.
func waitSyscallTracepoints(pid int, attached bool) error {
	deadline := time.Now().Add(syscallTracepointsWait)
	for {
		if hasSyscallTracepoints(pid) == attached {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the vigil beside the workload has its syscall tracepoints attached = %v after %v, want %v", !attached, syscallTracepointsWait, attached)
		}
		time.Sleep(quietPoll)
	}
}

// syscallTracepointsWait bounds waitSyscallTracepoints: vigil detaches
// within two --detach-idle (1 s by default) of its last use.
const syscallTracepointsWait = 10 * time.Second

// Quiet detection: vigil counts as idle when its CPU time has not grown
// for quietFor; waitQuiet gives up after quietMax (a busy machine may
// keep some thread of it running).
const (
	quietPoll = 10 * time.Millisecond
	quietFor  = 50 * time.Millisecond
	quietMax  = 2 * time.Second
)

// waitQuiet waits until process pid uses no CPU, and returns its CPU time
// then (clock ticks) and whether it went quiet within quietMax.
func waitQuiet(pid int) (int, bool) {
	last, err := cpuTicks(pid)
	if err != nil {
		return 0, false
	}
	since, deadline := time.Now(), time.Now().Add(quietMax)
	for time.Now().Before(deadline) {
		time.Sleep(quietPoll)
		t, err := cpuTicks(pid)
		if err != nil {
			return last, false
		}
		if t != last {
			last, since = t, time.Now()
			continue
		}
		if time.Since(since) >= quietFor {
			return last, true
		}
	}
	return last, false
}

// cpuTicks returns the user and system time of process pid, all threads,
// in clock ticks (/proc/PID/stat utime + stime).
func cpuTicks(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading vigil's stat: %w", err)
	}
	uf, ok1 := procinfo.StatField(b, 14) // utime
	kf, ok2 := procinfo.StatField(b, 15) // stime
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	u, err1 := strconv.Atoi(string(uf))
	k, err2 := strconv.Atoi(string(kf))
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("malformed /proc/%d/stat: %w", pid, err)
	}
	return u + k, nil
}

// memInfo is a process's resident set size, its anonymous part and its
// peak, in KiB (/proc/PID/status VmRSS, RssAnon and VmHWM). The rest of
// VmRSS is mostly vigil's own executable mapped from the page cache.
type memInfo struct{ rss, anon, hwm int }

func readMemInfo(pid int) (memInfo, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memInfo{}, fmt.Errorf("reading vigil's status: %w", err)
	}
	var mi memInfo
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			mi.rss = n
		case "RssAnon":
			mi.anon = n
		case "VmHWM":
			mi.hwm = n
		}
	}
	if mi.rss == 0 {
		return memInfo{}, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return mi, nil
}

// bpfLinks returns what /proc/PID/fdinfo says of each eBPF link pid holds
// open (one string per link, its fdinfo lines joined by spaces).
func bpfLinks(pid int) []string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, ent := range ents {
		if l, err := os.Readlink(filepath.Join(dir, ent.Name())); err != nil || l != "anon_inode:bpf_link" {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, ent.Name()))
		if err != nil {
			continue
		}
		out = append(out, strings.Join(strings.Fields(string(b)), " "))
	}
	return out
}
