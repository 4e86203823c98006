package enforcer

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/vigilsec/vigil/enforcer/filter"
	"github.com/vigilsec/vigil/enforcer/launch"
)

// RunConfig describes `vigil run`.
type RunConfig struct {
	Config
	Args   []string // command and arguments
	Env    []string
	Dir    string
	Stdin  *os.File
	Stdout *os.File
	Stderr *os.File
	// NoHardening drops the in-kernel hardening rules.
	NoHardening bool
	// SysProcAttr adds process attributes (namespaces) to the watchee.
	SysProcAttr *syscall.SysProcAttr
	// OnServe, when set, is called with the supervisor before the watchee
	// proceeds.
	OnServe func(*Supervisor)
	// Interruptible installs the filter without
	// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, as a container runtime that
	// does not pass the flag does (any signal then ends a watchee's wait,
	// also after vigil received the call: the restart guard's case). For
	// the signal-storm test.
	Interruptible bool
}

// UserNSRange is the host id range a --userns watchee's ids 0..Size-1 map to.
type UserNSRange struct{ HostID, Size int }

// DefaultUserNSRange is the conventional first subordinate id range
// (/etc/subuid's root:100000:65536).
var DefaultUserNSRange = UserNSRange{HostID: 100000, Size: 65536}

// UserNSAttr returns process attributes that start the watchee as root in a
// new user namespace mapped to r, with its own mount namespace. vigil (the
// parent) writes uid_map and gid_map before the watchee runs.
func UserNSAttr(r UserNSRange) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: r.HostID, Size: r.Size}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: r.HostID, Size: r.Size}},
		GidMappingsEnableSetgroups: true,
		// Become the namespace's root once the maps are written; host root
		// itself is unmapped there and would show up as nobody.
		Credential: &syscall.Credential{Uid: 0, Gid: 0},
	}
}

// Exit is how a supervised command ended.
type Exit struct {
	// Code is its exit status as a shell reports it: 128+signal when a
	// signal killed it; 2 when vigil failed, 126 or 127 when the command
	// could not be executed.
	Code int
	// Signal is the signal that killed it, or 0.
	Signal syscall.Signal
}

// Run supervises a command until every process under the filter has exited,
// and returns how the command ended.
func Run(cfg RunConfig) (Exit, error) {
	if len(cfg.Args) == 0 {
		return Exit{Code: 2}, errors.New("no command given")
	}
	path, code, err := launch.LookPath(cfg.Args[0])
	if err != nil {
		return Exit{Code: code}, err
	}
	// The init step is vigil's own child: same root, same mount namespace.
	cfg.Config.OwnRoot = cfg.SysProcAttr == nil || cfg.SysProcAttr.Cloneflags&syscall.CLONE_NEWNS == 0 && cfg.SysProcAttr.Chroot == ""
	w, err := startWatchee(&cfg, path)
	if err != nil {
		return Exit{Code: 2}, err
	}
	l := w.Listener()
	served, err := superviseWatchee(&cfg, w)
	if err != nil {
		w.Abort()
		l.Close()
		return Exit{Code: 2}, err
	}

	// Forward signals to the command while it runs; once it has exited, a
	// termination signal ends the wait for what it left behind (below).
	relay := w.RelaySignals()
	defer relay.Close()

	if err := w.Proceed(); err != nil {
		w.Abort()
		<-served
		l.Close()
		return Exit{Code: 2}, err
	}
	code, werr := w.Wait()
	ex := Exit{Code: code, Signal: w.Signal()}
	relay.CommandExited()
	// Descendants may still hold the filter; serve them until the listener
	// hangs up, so none of their trapped calls fails for lack of a supervisor
	// (like strace -f) — unless vigil is told to stop. Then, as strace
	// detaches, vigil leaves: the kernel answers their trapped calls ENOSYS
	// once vigil's listener is gone, so nothing is granted unvetted, and
	// `timeout`, Ctrl-C or a service manager still end `vigil run` when the
	// command left a daemon behind (fakeroot's faked, an ssh-agent).
	var serr error
	select {
	case serr = <-served:
	case s := <-relay.Stopped():
		cfg.Log.Warn().Str("signal", s.String()).Msg("the command has exited and vigil was told to stop: " +
			"the processes it left under the filter are no longer supervised, and their trapped calls now fail with ENOSYS")
		return ex, werr
	}
	l.Close()
	if werr != nil {
		return ex, werr
	}
	if serr != nil {
		return ex, fmt.Errorf("notify loop: %w", serr)
	}
	return ex, nil
}

// startWatchee compiles the policy's filter and starts the init step that
// installs it; the command runs once the watchee proceeds.
func startWatchee(cfg *RunConfig, path string) (*launch.Watchee, error) {
	plan, err := NewPlan(cfg.Policy, cfg.Unverified)
	if err != nil {
		return nil, err
	}
	spec := plan.FilterSpec()
	spec.NoHardening, spec.WatchRoot, spec.WatchMounts = cfg.NoHardening, cfg.OwnRoot, true
	prog, err := filter.Compile(spec)
	if err != nil {
		return nil, fmt.Errorf("compiling seccomp filter: %w", err)
	}
	w, err := launch.Start(launch.Config{
		Path: path, Args: cfg.Args, Env: cfg.Env, Dir: cfg.Dir, Program: prog,
		Stdin: cfg.Stdin, Stdout: cfg.Stdout, Stderr: cfg.Stderr, SysProcAttr: cfg.SysProcAttr,
		Interruptible: cfg.Interruptible,
	})
	if err != nil {
		return nil, err
	}
	if !w.Killable() && !cfg.Interruptible {
		cfg.Log.Warn().Msg("the kernel refused SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux < 5.19): a signal can interrupt a call vigil is carrying out; the restart guard answers its restart with the first result")
	}
	return w, nil
}

// superviseWatchee makes the watchee's supervisor, watches it in eBPF and
// starts serving its listener; served yields Serve's result. On error the
// caller aborts the watchee.
func superviseWatchee(cfg *RunConfig, w *launch.Watchee) (served chan error, err error) {
	// Path rules name objects as the watchee's view is now, before it runs
	// a single instruction of the command: vigil's own view, or with
	// --userns the new namespace's copy of it.
	cfg.Config.ReferencePid = w.Pid()
	sup, err := New(cfg.Config)
	if err != nil {
		return nil, err
	}
	if cfg.OnServe != nil {
		cfg.OnServe(sup)
	}
	if cfg.Kernel != nil {
		// Watched before it runs a single instruction of the command; its
		// descendants follow in eBPF (sched_process_fork).
		if err := cfg.Kernel.Watch(w.Pid()); err != nil {
			return nil, fmt.Errorf("watching watchee in eBPF: %w", err)
		}
	}
	ready := make(chan struct{})
	served = make(chan error, 1)
	l := w.Listener()
	go func() { served <- sup.Serve(l, ready) }()
	select {
	case <-ready:
		return served, nil
	case err := <-served:
		return nil, fmt.Errorf("starting notify loop: %w", err)
	}
}
