package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/cmd/vigil/internal/observe"
	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/launch"
	"github.com/vigilsec/vigil/loader"
)

// observeOptions are observe's flags.
type observeOptions struct {
	pid                                  int
	cgroup, syscalls, output, bufferSize string
	summary                              bool
}

func newObserveCmd() *cobra.Command {
	var o observeOptions
	cmd := &cobra.Command{
		Use:   "observe [-c] [-o FILE] [--pid PID | --cgroup PATH | -- CMD [ARGS...]] [--syscalls LIST] [--buffer-size SIZE]",
		Short: "Stream decoded syscalls with the kernel's objects, flagging phantom arguments (eBPF only, no seccomp)",
		Long: `observe watches processes with eBPF only: nothing is trapped or decided.
It prints one JSON event per syscall on stdout (or to -o FILE, like
strace -o; the observed command's own stdout then stays its stdout; without
-o it goes to stderr so the two never mix), with the pointer arguments as
user memory held them at sys_enter and what the kernel used at sys_exit
(its path, device and inode). Events where the two disagree — a racing
rewrite of the argument or a symlink swap — carry "phantom": true and are
logged at warn; the check starts from the directories the kernel's lookup
started from, captured at sys_enter, so a descriptor number reused later
is never a phantom. -c prints a per-syscall table like strace -c instead of
the events, on stderr (or to -o FILE), and the command keeps its stdout. The
summary line on stderr at exit counts events, lost events
(ring buffer full: raise --buffer-size) and calls per syscall.`,
		RunE: func(cmd *cobra.Command, argv []string) error { return runObserve(o, argv) },
	}
	addObserveFlags(cmd, &o)
	return cmd
}

func addObserveFlags(cmd *cobra.Command, o *observeOptions) {
	f := cmd.Flags()
	f.IntVar(&o.pid, "pid", 0, "observe this process and its future children until it exits")
	f.StringVar(&o.cgroup, "cgroup", "", "observe the processes of this cgroup v2 directory (and their children) until interrupted")
	f.StringVarP(&o.output, "output", "o", "", "write events (or the -c table) to FILE instead of stdout (stderr for -c)")
	f.StringVar(&o.syscalls, "syscalls", "", "comma-separated syscalls to observe (default "+strings.Join(observe.DefaultSyscalls, ",")+")")
	f.BoolVarP(&o.summary, "summary", "c", false, "print a per-syscall table (count, errors, time) at exit instead of the events, like strace -c")
	f.StringVar(&o.bufferSize, "buffer-size", "", "eBPF ring buffer size: a power of two, e.g. 64M (default 16M)")
	f.SetInterspersed(false)
}

// runObserve is observe: it loads the observer, watches the target until it
// is done and reports what it saw.
func runObserve(o observeOptions, argv []string) error {
	survivePipeReaders()
	nrs, size, err := o.parse(argv)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	diag := audit.NewLogger(os.Stderr, zerolog.InfoLevel)
	out, cmdOut, closeOut, err := o.outputs()
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer closeOut()
	events, table := out, io.Writer(nil)
	if o.summary {
		events, table = nil, out
	}
	obs, err := observe.New(observe.Config{Out: events, Log: diag})
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer obs.Close()
	ld, err := loader.LoadObserver(loader.ObserverOptions{Syscalls: nrs, RingBufferSize: size, Log: diag})
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("loading eBPF programs: %w", err)}
	}
	defer ld.Close()
	done := make(chan error, 1)
	go func() { done <- obs.Run(ld) }()
	var killedBy syscall.Signal
	code, werr := observeTarget(ld, o.pid, o.cgroup, argv, cmdOut, &killedBy)
	if err := finishObservation(diag, obs, ld, done, table, werr); err != nil {
		if werr == nil || code == 0 {
			code = 2
		}
		// A command that could not start keeps a shell's 126 or 127.
		return &exitError{code: code, err: err}
	}
	if code != 0 {
		return &exitError{code: code, signal: killedBy}
	}
	return nil
}

// parse checks that exactly one target is named and returns the syscall
// numbers to observe and the ring buffer size.
func (o observeOptions) parse(argv []string) (nrs []int, size int, err error) {
	targets := 0
	for _, set := range []bool{o.pid != 0, o.cgroup != "", len(argv) > 0} {
		if set {
			targets++
		}
	}
	if targets != 1 {
		return nil, 0, errors.New("observe needs exactly one of --pid, --cgroup or -- CMD")
	}
	names := observe.DefaultSyscalls
	if o.syscalls != "" {
		names = strings.Split(o.syscalls, ",")
	}
	if nrs, err = observe.Numbers(names); err != nil {
		return nil, 0, err
	}
	size = loader.DefaultObserveBufferSize
	if o.bufferSize != "" {
		if size, err = observe.ParseSize(o.bufferSize); err == nil {
			err = loader.CheckBufferSize(size)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("--buffer-size: %w", err)
		}
	}
	return nrs, size, nil
}

// outputs returns where the events (or the -c table) go, where the
// observed command's stdout goes, and what closes the -o file.
func (o observeOptions) outputs() (out io.Writer, cmdOut *os.File, closeOut func(), err error) {
	out, cmdOut = os.Stdout, os.Stderr
	if o.summary {
		// Like strace -c: the command keeps its stdout, the table
		// comes at the end on stderr.
		out, cmdOut = os.Stderr, os.Stdout
	}
	if o.output == "" {
		return out, cmdOut, func() {}, nil
	}
	f, err := os.OpenFile(o.output, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("opening event output: %w", err)
	}
	return f, os.Stdout, func() { f.Close() }, nil
}

// finishObservation ends an observation whose target is done: it lets the
// reader take every record, closes the loader, writes the -c table to
// table (when not nil) and the summary line, and returns the first error
// of the observation, werr (watching the target) first.
func finishObservation(diag zerolog.Logger, obs *observe.Observer, ld *loader.Observer, done <-chan error, table io.Writer, werr error) error {
	// Every record of the finished target is committed: let the reader
	// take them all before closing.
	serr := ld.Sync(10 * time.Second)
	counters, kerr := ld.Counters()
	cerr := ld.Close()
	rerr := <-done
	if table != nil {
		if err := obs.WriteTable(table); err != nil {
			werr = errors.Join(werr, fmt.Errorf("writing summary table: %w", err))
		}
	}
	logSummary(diag, obs, counters, kerr, ld.Skipped())
	for _, e := range []error{werr, serr, rerr, cerr, obs.Err()} {
		if e != nil {
			return e
		}
	}
	return nil
}

// logSummary writes the line that ends an observation: how many events,
// how many lost, per syscall, and the rate the reader sustained.
func logSummary(diag zerolog.Logger, obs *observe.Observer, c loader.ObsCounters, cerr error, skipped uint64) {
	st := obs.Stats()
	ev := diag.Info()
	if c.Lost+c.NoStorage+c.Untracked+skipped > 0 || cerr != nil {
		ev = diag.Warn()
	}
	perNr := zerolog.Dict()
	for _, s := range obs.Syscalls() {
		perNr = perNr.Uint64(s.Name, s.Calls)
	}
	ev = ev.Uint64("events", st.Events).Uint64("lost", c.Lost).Uint64("phantoms", st.Phantoms).
		Uint64("unchecked", st.Unchecked).Uint64("incomplete", st.Incomplete).Dict("syscalls", perNr).
		Int64("reader_events_per_sec", int64(st.Rate()))
	if c.NoStorage > 0 {
		ev = ev.Uint64("unobserved_no_memory", c.NoStorage)
	}
	if c.Untracked > 0 {
		ev = ev.Uint64("untracked_children", c.Untracked)
	}
	if skipped > 0 {
		ev = ev.Uint64("undecodable", skipped)
	}
	if cerr != nil {
		ev = ev.AnErr("counters_err", cerr)
	}
	ev.Msg("observe finished")
}

// observeTarget watches the target and returns when it is done: the
// command's exit code, the process's exit, or an interrupt for a cgroup.
func observeTarget(ld *loader.Observer, pid int, cgroup string, argv []string, cmdOut *os.File, killedBy *syscall.Signal) (int, error) {
	if pid == 0 && cgroup == "" {
		return observeCommand(ld, argv, cmdOut, killedBy)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	switch {
	case pid != 0:
		if err := ld.Watch(pid); err != nil {
			return 2, fmt.Errorf("watching %d: %w", pid, err)
		}
		pidfd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			return 2, fmt.Errorf("opening pidfd of %d: %w", pid, err)
		}
		defer unix.Close(pidfd)
		exited := make(chan struct{})
		go func() {
			// A pidfd polls readable when the process exits.
			fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
			for {
				if n, err := unix.Poll(fds, -1); n > 0 || (err != nil && err != unix.EINTR) {
					break
				}
			}
			close(exited)
		}()
		select {
		case <-exited:
		case <-sigs:
		}
		return 0, nil
	default:
		n, err := observe.WatchCgroup(ld.Watch, cgroup)
		if err != nil {
			return 2, err
		}
		if n == 0 {
			return 2, fmt.Errorf("cgroup %s has no processes", cgroup)
		}
		<-sigs
		return 0, nil
	}
}

// observeCommand runs argv watched until it exits, forwarding signals to it
// as `vigil run` does.
func observeCommand(ld *loader.Observer, argv []string, cmdOut *os.File, killedBy *syscall.Signal) (int, error) {
	path, code, err := launch.LookPath(argv[0])
	if err != nil {
		return code, err
	}
	w, err := launch.Start(launch.Config{Path: path, Args: argv, Env: os.Environ(), Stdin: os.Stdin, Stdout: cmdOut, Stderr: os.Stderr})
	if err != nil {
		return 2, err
	}
	if err := ld.Watch(w.Pid()); err != nil {
		w.Abort()
		return 2, fmt.Errorf("watching %s: %w", argv[0], err)
	}
	relay := w.RelaySignals()
	defer relay.Close()
	if err := w.Proceed(); err != nil {
		w.Abort()
		return 2, err
	}
	code, err = w.Wait()
	*killedBy = w.Signal()
	return code, err
}
