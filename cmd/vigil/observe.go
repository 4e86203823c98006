package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
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

func newObserveCmd() *cobra.Command {
	var pid int
	var cgroup, syscalls, output string
	cmd := &cobra.Command{
		Use:   "observe [-o FILE] [--pid PID | --cgroup PATH | -- CMD [ARGS...]] [--syscalls LIST]",
		Short: "Stream decoded syscalls with the kernel's objects, flagging phantom arguments (eBPF only, no seccomp)",
		Long: `observe watches processes with eBPF only: nothing is trapped or decided.
It prints one JSON event per syscall on stdout (or to -o FILE, like
strace -o; the observed command's own stdout then stays its stdout; without
-o it goes to stderr so the two never mix), with the pointer arguments as
user memory held them at sys_enter and what the kernel used at sys_exit
(its path, device and inode). Events where the two disagree — a racing
rewrite of the argument or a symlink swap — carry "phantom": true and are
logged at warn. Lost events are reported on stderr.`,
		RunE: func(cmd *cobra.Command, argv []string) error {
			targets := 0
			for _, set := range []bool{pid != 0, cgroup != "", len(argv) > 0} {
				if set {
					targets++
				}
			}
			if targets != 1 {
				return &exitError{code: 2, err: errors.New("observe needs exactly one of --pid, --cgroup or -- CMD")}
			}
			names := observe.DefaultSyscalls
			if syscalls != "" {
				names = strings.Split(syscalls, ",")
			}
			nrs, err := observe.Numbers(names)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			diag := audit.NewLogger(os.Stderr, zerolog.InfoLevel)
			ld, err := loader.Load(loader.Options{Capture: nrs, Log: diag})
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("loading eBPF programs: %w", err)}
			}
			var events io.Writer = os.Stdout
			cmdOut := os.Stderr
			if output != "" {
				f, err := os.OpenFile(output, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
				if err != nil {
					ld.Close()
					return &exitError{code: 2, err: fmt.Errorf("opening event output: %w", err)}
				}
				sink := audit.NewSink(f)
				defer sink.Close()
				events, cmdOut = sink, os.Stdout
			}
			out := zerolog.New(events).With().Timestamp().Logger()
			obs, err := observe.New(out, diag)
			if err != nil {
				ld.Close()
				return &exitError{code: 2, err: err}
			}
			done := make(chan error, 1)
			go func() { done <- obs.Run(ld) }()
			code, werr := observeTarget(ld, pid, cgroup, argv, cmdOut)
			// Let the last events reach the reader before closing.
			obs.Drain(5 * time.Second)
			cerr := ld.Close()
			rerr := <-done
			if lost, err := ld.Lost(); err == nil && lost > 0 {
				diag.Warn().Uint64("lost_events", lost).Msg("events were lost (ring buffer full)")
			}
			st := obs.Stats()
			diag.Info().Uint64("events", st.Events).Uint64("phantoms", st.Phantoms).Msg("observe finished")
			for _, e := range []error{werr, rerr, cerr} {
				if e != nil {
					return &exitError{code: 2, err: e}
				}
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&pid, "pid", 0, "observe this process and its future children until it exits")
	f.StringVar(&cgroup, "cgroup", "", "observe the processes of this cgroup v2 directory (and their children) until interrupted")
	f.StringVarP(&output, "output", "o", "", "write events to FILE (JSON lines) instead of stdout")
	f.StringVar(&syscalls, "syscalls", "", "comma-separated syscalls to observe (default "+strings.Join(observe.DefaultSyscalls, ",")+")")
	f.SetInterspersed(false)
	return cmd
}

// observeTarget watches the target and returns when it is done: the
// command's exit code, the process's exit, or an interrupt for a cgroup.
func observeTarget(ld *loader.Loader, pid int, cgroup string, argv []string, cmdOut *os.File) (int, error) {
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
	case cgroup != "":
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
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return 127, fmt.Errorf("%s: command not found", argv[0])
	}
	w, err := launch.Start(launch.Config{Path: path, Args: argv, Env: os.Environ(), Stdin: os.Stdin, Stdout: cmdOut, Stderr: os.Stderr})
	if err != nil {
		return 2, err
	}
	if err := ld.Watch(w.Pid()); err != nil {
		w.Abort()
		return 2, fmt.Errorf("watching %s: %w", argv[0], err)
	}
	go func() {
		for s := range sigs {
			_ = w.Process().Signal(s)
		}
	}()
	if err := w.Proceed(); err != nil {
		w.Abort()
		return 2, err
	}
	return w.Wait()
}
