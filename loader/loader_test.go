package loader

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/testenv"
)

// Helper-mode environment: the test binary re-executes itself as a watchee.
const (
	envHelper = "VIGIL_LOADER_HELPER"
	envPath   = "VIGIL_LOADER_PATH"
	envArg    = "VIGIL_LOADER_ARG" // a mode's second argument
	// envFilter set: the helper puts itself under an allow-all seccomp
	// filter first, as every thread the enforcer binds is (the tracepoint
	// tax benchmark runs without, as most of the host does).
	envFilter = "VIGIL_LOADER_FILTER"
)

// init keeps a helper's main goroutine on the main thread, the thread
// group's leader: locked during init, the runtime leaves it there for main
// (runtime.LockOSThread). Otherwise TestMain may run on another thread, and
// an exec from it takes over the leader's id, so a binding written for the
// tid it reported is no longer that thread's at sys_exit — which made
// TestExecWithoutExecCheckFailsClosed pass or fail by scheduling (6.1 guest).
func init() {
	if os.Getenv(envHelper) != "" {
		runtime.LockOSThread()
	}
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(envHelper); mode != "" {
		os.Exit(helperMain(mode, os.Getenv(envPath)))
	}
	os.Exit(m.Run())
}

// helperMain is the watchee. On a locked OS thread it reports its tid on fd
// 4, waits for one byte on fd 3 (the parent binds meanwhile), makes exactly
// one syscall of interest, and reports "ok N" or "err ERRNO" on fd 4.
func helperMain(mode, path string) int {
	runtime.LockOSThread()
	if os.Getenv(envFilter) != "" {
		if err := allowAllFilter(); err != nil {
			fmt.Fprintf(os.Stderr, "installing seccomp filter: %v\n", err)
			return 3
		}
	}
	if mode == "exec-thread" {
		return onNonLeaderThread(func() int { return helperMain("exec", path) })
	}
	helperSetup(mode)
	report := os.NewFile(4, "report")
	fmt.Fprintf(report, "%d\n", unix.Gettid())
	var b [1]byte
	if _, err := unix.Read(3, b[:]); err != nil {
		fmt.Fprintf(report, "setup %v\n", err)
		return 3
	}
	var (
		r   uintptr
		err error
	)
	switch mode {
	case "open":
		var fd int
		fd, err = unix.Openat(unix.AT_FDCWD, path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		r = uintptr(fd)
	case "create":
		var fd int
		fd, err = unix.Openat(unix.AT_FDCWD, path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		r = uintptr(fd)
	case "chroot-open":
		// path is DIR:NAME; open /NAME inside a chroot to DIR.
		dir, name, _ := strings.Cut(path, ":")
		if err = unix.Chroot(dir); err == nil {
			var fd int
			fd, err = unix.Openat(unix.AT_FDCWD, "/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			r = uintptr(fd)
		}
	case "load-noprivs":
		// Drop every capability of this thread (capset is per thread, and
		// Load's bpf() calls run on it), then try to load: "ok 0" means
		// Load failed with ErrNotSupported.
		var caps [2]unix.CapUserData
		if err = unix.Capset(&unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}, &caps[0]); err == nil {
			l, lerr := Load(Options{})
			switch {
			case lerr == nil:
				l.Close()
				err = errors.New("loaded without capabilities")
			case !errors.Is(lerr, ErrNotSupported):
				err = lerr
			}
		}
	case "create-noexcl":
		var fd int
		fd, err = unix.Openat(unix.AT_FDCWD, path, unix.O_WRONLY|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
		r = uintptr(fd)
	case "badptr":
		// A path pointer sys_enter cannot read.
		var errno unix.Errno
		r, _, errno = unix.Syscall6(unix.SYS_OPENAT, atFDCWD, 1, unix.O_RDONLY, 0, 0, 0)
		if errno != 0 {
			err = errno
		}
	case "getpid":
		// BenchmarkTracepointTax: time N getpid calls on this thread.
		r, err = getpidLoop(os.Getenv(envArg))
	case "fork":
		// Start a grandchild that opens path, and report its pid.
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envHelper+"=touch")
		err = cmd.Run()
		if cmd.Process != nil {
			r = uintptr(cmd.Process.Pid)
		}
	default:
		var known bool
		if r, known, err = helperKinds(mode, path, os.Getenv(envArg)); !known {
			fmt.Fprintf(report, "setup unknown mode %s\n", mode)
			return 2
		}
	}
	if err != nil {
		fmt.Fprintf(report, "err %v\n", err)
	} else {
		fmt.Fprintf(report, "ok %d\n", r)
	}
	return 0
}

// atFDCWD is AT_FDCWD as a syscall argument register holds it.
var atFDCWD = func() uintptr { fd := unix.AT_FDCWD; return uintptr(fd) }()

func init() {
	// The grandchild of the fork test inherits no pipes: it only opens.
	if os.Getenv(envHelper) == "touch" {
		if fd, err := unix.Open(os.Getenv(envPath), unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
			unix.Close(fd)
		}
		os.Exit(0)
	}
}

// sink collects every event of a running Loader.
type sink struct {
	mu     sync.Mutex
	events []Event
	done   chan error
}

func startSink(t *testing.T, l *Loader) *sink {
	s := &sink{done: make(chan error, 1)}
	go func() {
		s.done <- l.ReadEvents(func(ev *Event) {
			s.mu.Lock()
			s.events = append(s.events, ev.Clone())
			s.mu.Unlock()
		})
	}()
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("ReadEvents: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("ReadEvents did not return after Close")
		}
	})
	return s
}

// wait returns the first event matching pred, waiting up to 5s.
func (s *sink) wait(t *testing.T, what string, pred func(*Event) bool) Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		for i := range s.events {
			if pred(&s.events[i]) {
				ev := s.events[i]
				s.mu.Unlock()
				return ev
			}
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			s.dump(t)
			t.Fatalf("no %s event within 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *sink) dump(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range s.events {
		t.Logf("event %+v", ev)
	}
}

func loadForTest(t *testing.T, capture ...int) (*Loader, *sink) {
	t.Helper()
	testenv.RequirePrivileged(t)
	l, err := Load(Options{Capture: capture, Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return l, startSink(t, l)
}

// outcome is how a helper run ended.
type outcome struct {
	pid, tid int
	report   string // the helper's result line
	signal   syscall.Signal
}

// runHelper starts the test binary in mode on path, watches it, calls bind
// with its tid (nil, or a nil result: no binding), releases it, and waits
// for it.
func runHelper(t *testing.T, l *Loader, mode, path string, bind func(tid int) *Binding) outcome {
	t.Helper()
	return runHelperArg(t, l, mode, path, "", bind)
}

// runHelperArg is runHelper with a second argument for the mode (envArg).
func runHelperArg(t *testing.T, l *Loader, mode, path, arg string, bind func(tid int) *Binding) outcome {
	t.Helper()
	return runHelperRun(t, l, helperRun{mode: mode, path: path, arg: arg, bind: bind})
}

// helperRun says what runHelperRun runs: the helper's mode and arguments,
// and the binding written before the release (bind) or, with inCall set,
// after it, once the helper's thread is inside its syscall callNr; inCall then
// lets the call finish (e.g. opens a FIFO's other end).
type helperRun struct {
	mode, path, arg string
	bind            func(tid int) *Binding
	inCall          func(tid int)
	callNr          int // the syscall inCall waits for the helper to be in
}

// runHelperRun starts the helper, binds as r says, and returns how it ended.
func runHelperRun(t *testing.T, l *Loader, r helperRun) outcome {
	t.Helper()
	mode, path, arg, bind := r.mode, r.path, r.arg, r.bind
	relR, relW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelper+"="+mode, envPath+"="+path, envArg+"="+arg, envFilter+"=1")
	cmd.ExtraFiles = []*os.File{relR, repW}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	relR.Close()
	repW.Close()
	defer relW.Close()
	defer repR.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			<-exited
		}
	}()

	o := outcome{pid: cmd.Process.Pid}
	if err := l.Watch(o.pid); err != nil {
		t.Fatalf("Watch: %v", err)
	}
	lines := make(chan string, 2)
	go func() {
		sc := bufio.NewScanner(repR)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case line := <-lines:
		if o.tid, err = strconv.Atoi(line); err != nil {
			t.Fatalf("helper said %q, want its tid", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("helper did not report its tid within 10s")
	}
	bindNow := func() {
		if bind != nil {
			if b := bind(o.tid); b != nil {
				if err := l.Bind(o.tid, b); err != nil {
					t.Fatalf("Bind: %v", err)
				}
			}
		}
	}
	if r.inCall == nil {
		bindNow()
	}
	if _, err := relW.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if r.inCall != nil {
		waitInSyscall(t, o.pid, o.tid, r.callNr)
		bindNow()
		r.inCall(o.tid)
	}
	select {
	case err := <-exited:
		killed = true
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				o.signal = ws.Signal()
			} else {
				t.Fatalf("helper failed: %v", err)
			}
		} else if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("helper did not exit within 10s")
	}
	o.report = <-lines
	return o
}

func statOf(t *testing.T, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func fileBinding(path string, st unix.Stat_t) *Binding {
	return &Binding{Nr: unix.SYS_OPENAT, Kind: BindFile, ArgIndex: 1, Arg: []byte(path), Dev: st.Dev, Ino: st.Ino}
}

func tempFile(t *testing.T, dir string) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "vigil-loader-test-")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() { os.Remove(f.Name()) })
	p, err := filepath.EvalSymlinks(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadCloseTwiceLeaksNothing(t *testing.T) {
	testenv.RequirePrivileged(t)
	before := openFDs(t)
	for i := 0; i < 2; i++ {
		l, err := Load(Options{Capture: []int{unix.SYS_OPENAT}})
		if err != nil {
			t.Fatalf("Load #%d: %v", i+1, err)
		}
		if n, err := l.Lost(); err != nil || n != 0 {
			t.Errorf("Lost() = %d, %v on a fresh loader", n, err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("second Close #%d: %v", i+1, err)
		}
	}
	if after := openFDs(t); after != before {
		t.Errorf("open fds: %d before, %d after two Load/Close cycles", before, after)
	}
}

// TestLoadWithoutCapabilitiesIsNotSupported: a process without CAP_BPF and
// CAP_SYS_ADMIN gets ErrNotSupported, the condition callers branch on.
func TestLoadWithoutCapabilitiesIsNotSupported(t *testing.T) {
	l, _ := loadForTest(t)
	o := runHelper(t, l, "load-noprivs", "", nil)
	if o.signal != 0 || o.report != "ok 0" {
		t.Fatalf("unprivileged Load: signal %v, report %q; want ErrNotSupported", o.signal, o.report)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestLoadRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{{Capture: []int{-1}}, {Capture: []int{CaptureNr}}, {RingBufferSize: 3 << 20}, {RingBufferSize: 1024}} {
		if l, err := Load(o); err == nil {
			l.Close()
			t.Errorf("Load(%+v) succeeded", o)
		} else if errors.Is(err, ErrNotSupported) {
			t.Errorf("Load(%+v): %v wraps ErrNotSupported", o, err)
		}
	}
}

func TestWatchSetAndSelf(t *testing.T) {
	l, _ := loadForTest(t)
	if err := l.Watch(os.Getpid()); err == nil {
		t.Error("Watch(self) succeeded")
	}
	const pid = 0x3ffffff0 // above pid_max: never a real process
	if err := l.Watch(pid); err != nil {
		t.Fatal(err)
	}
	if ok, err := l.Watched(pid); err != nil || !ok {
		t.Fatalf("Watched after Watch = %v, %v", ok, err)
	}
	if err := l.Unwatch(pid); err != nil {
		t.Fatal(err)
	}
	if err := l.Unwatch(pid); err != nil {
		t.Fatalf("second Unwatch: %v", err)
	}
	if ok, err := l.Watched(pid); err != nil || ok {
		t.Fatalf("Watched after Unwatch = %v, %v", ok, err)
	}
	if err := l.Unbind(pid); err != nil {
		t.Fatalf("Unbind of nothing: %v", err)
	}
}

// TestCorrectFileBindingSurvives: a watchee that opens exactly the vetted
// file keeps running, and the EXIT event carries the kernel's identity and
// path of the file, including across mounts (/dev/shm is a tmpfs mounted
// on devtmpfs).
func TestCorrectFileBindingSurvives(t *testing.T) {
	l, s := loadForTest(t, unix.SYS_OPENAT)
	dirs := []string{t.TempDir()}
	if _, err := os.Stat("/dev/shm"); err == nil {
		dirs = append(dirs, "/dev/shm")
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			path := tempFile(t, dir)
			st := statOf(t, path)
			o := runHelper(t, l, "open", path, func(int) *Binding { return fileBinding(path, st) })
			if o.signal != 0 || !strings.HasPrefix(o.report, "ok ") {
				t.Fatalf("watchee: signal %v, report %q", o.signal, o.report)
			}
			ev := s.wait(t, "EXIT", func(ev *Event) bool {
				return ev.Tid == o.tid && ev.Nr == unix.SYS_OPENAT && ev.Type != EventEnter && ev.Flags.Has(FlagBound)
			})
			if ev.Type != EventExit || ev.Reason != ReasonOK || ev.Flags.Has(FlagKilled) {
				t.Fatalf("got %+v, want a clean EXIT", ev)
			}
			if !ev.Flags.Has(FlagHasObject) || ev.Dev != st.Dev || ev.Ino != st.Ino {
				t.Errorf("EXIT object (%#x, %d), want (%#x, %d); flags %v", ev.Dev, ev.Ino, st.Dev, st.Ino, ev.Flags)
			}
			if ev.KPath != path || ev.Flags.Has(FlagKPathTrunc) {
				t.Errorf("kpath %q (flags %v), want %q", ev.KPath, ev.Flags, path)
			}
			if ev.Tgid != o.pid || ev.Ret < 0 {
				t.Errorf("tgid %d ret %d, want %d and an fd", ev.Tgid, ev.Ret, o.pid)
			}
			enter := s.wait(t, "ENTER", func(ev *Event) bool {
				return ev.Tid == o.tid && ev.Type == EventEnter && ev.Path == path
			})
			if !enter.Flags.Has(FlagBound) {
				t.Errorf("ENTER of the bound call lacks FlagBound: %+v", enter)
			}
		})
	}
}

// TestKernelPathStopsAtTheTaskRoot: in a chroot, the kernel path is the
// one the watchee sees, like /proc/PID/fd links and d_path().
func TestKernelPathStopsAtTheTaskRoot(t *testing.T) {
	l, s := loadForTest(t)
	path := tempFile(t, t.TempDir())
	dir, name := filepath.Split(path)
	st := statOf(t, path)
	o := runHelper(t, l, "chroot-open", dir+":"+name, func(int) *Binding {
		return &Binding{Nr: unix.SYS_OPENAT, Kind: BindFile, ArgIndex: 1, Arg: []byte("/" + name), Dev: st.Dev, Ino: st.Ino}
	})
	if o.signal != 0 || !strings.HasPrefix(o.report, "ok ") {
		t.Fatalf("watchee: signal %v, report %q", o.signal, o.report)
	}
	ev := s.wait(t, "EXIT", func(ev *Event) bool { return ev.Tid == o.tid && ev.Type != EventEnter && ev.Flags.Has(FlagBound) })
	if ev.Type != EventExit || ev.KPath != "/"+name {
		t.Errorf("got %+v, want EXIT with kpath /%s", ev, name)
	}
}

// TestLongKernelPathsAreFlagged: past EventPath bytes the kernel path is
// cut to its start; past 32 components the walk stops and the path lacks
// its leading components. Both set FlagKPathTrunc.
func TestLongKernelPathsAreFlagged(t *testing.T) {
	l, s := loadForTest(t, unix.SYS_OPENAT)
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	long := filepath.Join(root, strings.Repeat("l", 200), strings.Repeat("m", 200))
	deep := filepath.Join(root, strings.Repeat("d/", 40))
	for _, dir := range []string{long, deep} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "f")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		o := runHelper(t, l, "open", path, nil)
		if o.signal != 0 || !strings.HasPrefix(o.report, "ok ") {
			t.Fatalf("watchee: signal %v, report %q", o.signal, o.report)
		}
		st := statOf(t, path)
		ev := s.wait(t, "EXIT", func(ev *Event) bool { return ev.Tid == o.tid && ev.Type == EventExit && ev.Ino == st.Ino })
		if !ev.Flags.Has(FlagKPathTrunc) || len(ev.KPath) == 0 {
			t.Errorf("%s: kpath %q, flags %v: want a cut path, flagged", path, ev.KPath, ev.Flags)
		}
		if len(path) > EventPath {
			enter := s.wait(t, "ENTER", func(ev *Event) bool { return ev.Tid == o.tid && ev.Type == EventEnter && ev.Path == path[:EventPath] })
			if !enter.Flags.Has(FlagPathTrunc) {
				t.Errorf("%s: ENTER path %q not flagged as cut", path, enter.Path)
			}
		}
		if dir == long && ev.KPath != path[:EventPath] {
			t.Errorf("long path: kpath %q, want its first %d bytes", ev.KPath, EventPath)
		}
		if dir == deep && (!strings.HasSuffix(path, ev.KPath) || !strings.HasPrefix(ev.KPath, "/d/d/")) {
			t.Errorf("deep path: kpath %q, want a tail of %q", ev.KPath, path)
		}
	}
}

// TestWrongInodeIsKilled: the kernel returned a file other than the vetted
// one (here: the binding names another inode), so the watchee dies before
// it returns to user mode.
func TestWrongInodeIsKilled(t *testing.T) {
	l, s := loadForTest(t)
	path := tempFile(t, t.TempDir())
	st := statOf(t, path)
	o := runHelper(t, l, "open", path, func(int) *Binding {
		b := fileBinding(path, st)
		b.Ino++
		return b
	})
	if o.signal != syscall.SIGKILL {
		t.Fatalf("watchee: signal %v, report %q; want SIGKILL", o.signal, o.report)
	}
	if o.report != "" {
		t.Errorf("watchee reached user mode after the open: %q", o.report)
	}
	ev := s.wait(t, "VIOLATION", func(ev *Event) bool { return ev.Tid == o.tid && ev.Type == EventViolation })
	if ev.Reason != ReasonObjectMismatch || !ev.Flags.Has(FlagKilled|FlagBound|FlagHasObject|FlagAtExit) || ev.Ret < 0 {
		t.Errorf("got %+v, want OBJECT_MISMATCH at exit, killed, with the object", ev)
	}
	if ev.Ino != st.Ino || ev.KPath != path {
		t.Errorf("violation reports (%d, %q), want the file the kernel opened (%d, %q)", ev.Ino, ev.KPath, st.Ino, path)
	}
}

// TestChangedArgumentIsKilled: the argument bytes at sys_enter are not the
// vetted ones (a racing rewrite), so sys_enter kills.
func TestChangedArgumentIsKilled(t *testing.T) {
	l, s := loadForTest(t)
	path := tempFile(t, t.TempDir())
	st := statOf(t, path)
	o := runHelper(t, l, "open", path, func(int) *Binding {
		b := fileBinding(path, st)
		b.Arg = append([]byte(nil), b.Arg...)
		b.Arg[len(b.Arg)-1] ^= 1
		return b
	})
	if o.signal != syscall.SIGKILL || o.report != "" {
		t.Fatalf("watchee: signal %v, report %q; want SIGKILL before user mode", o.signal, o.report)
	}
	ev := s.wait(t, "VIOLATION", func(ev *Event) bool { return ev.Tid == o.tid && ev.Type == EventViolation })
	if ev.Reason != ReasonArgChanged || !ev.Flags.Has(FlagKilled|FlagBound) || ev.Flags.Has(FlagAtExit) || ev.Path != path {
		t.Errorf("got %+v, want ARG_CHANGED, killed, with the path user memory held", ev)
	}
	// sys_exit still reports the call, marked killed, once.
	exit := s.wait(t, "EXIT", func(ev *Event) bool { return ev.Tid == o.tid && ev.Type == EventExit })
	if !exit.Flags.Has(FlagKilled|FlagBound|FlagAtExit) || exit.Reason != ReasonOK {
		t.Errorf("EXIT after a sys_enter kill: %+v", exit)
	}
}

// TestUnreadableArgumentIsKilled: a path pointer sys_enter cannot read.
func TestUnreadableArgumentIsKilled(t *testing.T) {
	l, s := loadForTest(t)
	o := runHelper(t, l, "badptr", "", func(int) *Binding {
		return &Binding{Nr: unix.SYS_OPENAT, Kind: BindFile, ArgIndex: 1, Arg: []byte("/etc/hostname")}
	})
	if o.signal != syscall.SIGKILL || o.report != "" {
		t.Fatalf("watchee: signal %v, report %q; want SIGKILL before user mode", o.signal, o.report)
	}
	ev := s.wait(t, "VIOLATION", func(ev *Event) bool { return ev.Tid == o.tid && ev.Type == EventViolation })
	if ev.Reason != ReasonArgUnreadable || !ev.Flags.Has(FlagKilled) {
		t.Errorf("got %+v, want ARG_UNREADABLE, killed", ev)
	}
}

// TestCreateBinding: O_CREAT of a vetted missing name in a vetted directory
// passes; the same open checked against another name or directory kills,
// and so does opening a file that appeared under the name after vetting.
func TestCreateBinding(t *testing.T) {
	l, s := loadForTest(t)
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dst := statOf(t, dir)
	bind := func(path, name string) func(int) *Binding {
		return func(int) *Binding {
			return &Binding{Nr: unix.SYS_OPENAT, Kind: BindCreate, ArgIndex: 1, Arg: []byte(path),
				Dev: dst.Dev, Ino: dst.Ino, Name: name}
		}
	}

	good := filepath.Join(dir, "new-file")
	o := runHelper(t, l, "create", good, bind(good, "new-file"))
	if o.signal != 0 || !strings.HasPrefix(o.report, "ok ") {
		t.Fatalf("create with the right binding: signal %v, report %q", o.signal, o.report)
	}
	ev := s.wait(t, "EXIT", func(ev *Event) bool { return ev.Tid == o.tid && ev.Type != EventEnter && ev.Flags.Has(FlagBound) })
	if ev.Type != EventExit || ev.KPath != good {
		t.Errorf("got %+v, want EXIT for %s", ev, good)
	}

	bad := filepath.Join(dir, "other-file")
	o = runHelper(t, l, "create", bad, bind(bad, "not-other-file"))
	if o.signal != syscall.SIGKILL || o.report != "" {
		t.Fatalf("create with a wrong name: signal %v, report %q; want SIGKILL", o.signal, o.report)
	}
	ev = s.wait(t, "VIOLATION", func(ev *Event) bool { return ev.Tid == o.tid && ev.Type == EventViolation })
	if ev.Reason != ReasonObjectMismatch || ev.KPath != bad {
		t.Errorf("got %+v, want OBJECT_MISMATCH for %s", ev, bad)
	}

	// Vetted missing, present at open time (a racer's hard link): the open
	// did not create the file, so the binding does not hold.
	appeared := filepath.Join(dir, "appeared")
	if err := os.WriteFile(appeared, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	o = runHelper(t, l, "create-noexcl", appeared, bind(appeared, "appeared"))
	if o.signal != syscall.SIGKILL || o.report != "" {
		t.Fatalf("O_CREAT of a name that appeared after vetting: signal %v, report %q; want SIGKILL", o.signal, o.report)
	}
	ev = s.wait(t, "VIOLATION", func(ev *Event) bool { return ev.Tid == o.tid && ev.Type == EventViolation })
	if ev.Reason != ReasonObjectMismatch || ev.KPath != appeared {
		t.Errorf("got %+v, want OBJECT_MISMATCH for %s", ev, appeared)
	}
	fresh := filepath.Join(dir, "fresh")
	o = runHelper(t, l, "create-noexcl", fresh, bind(fresh, "fresh"))
	if o.signal != 0 || !strings.HasPrefix(o.report, "ok ") {
		t.Fatalf("O_CREAT without O_EXCL of a missing name: signal %v, report %q", o.signal, o.report)
	}

	wrongDir := filepath.Join(dir, "third-file")
	o = runHelper(t, l, "create", wrongDir, func(int) *Binding {
		b := bind(wrongDir, "third-file")(0)
		b.Ino++
		return b
	})
	if o.signal != syscall.SIGKILL {
		t.Fatalf("create in another directory than vetted: signal %v, report %q; want SIGKILL", o.signal, o.report)
	}
}

// TestForkedChildIsWatched: the grandchild of the test, forked by a watched
// child, is watched from its first instruction (its open is captured), and
// leaves the watched set when it exits.
func TestForkedChildIsWatched(t *testing.T) {
	l, s := loadForTest(t, unix.SYS_OPENAT)
	marker := filepath.Join(t.TempDir(), "marker-"+strconv.Itoa(os.Getpid()))
	o := runHelper(t, l, "fork", marker, nil)
	if o.signal != 0 || !strings.HasPrefix(o.report, "ok ") {
		t.Fatalf("watchee: signal %v, report %q", o.signal, o.report)
	}
	gpid, err := strconv.Atoi(strings.TrimPrefix(o.report, "ok "))
	if err != nil || gpid == o.pid {
		t.Fatalf("bad grandchild pid in %q", o.report)
	}
	ev := s.wait(t, "grandchild ENTER", func(ev *Event) bool { return ev.Type == EventEnter && ev.Path == marker })
	if ev.Tgid != gpid {
		t.Errorf("marker open came from tgid %d, want the grandchild %d", ev.Tgid, gpid)
	}
	s.wait(t, "grandchild EXIT", func(ev *Event) bool { return ev.Type == EventExit && ev.Tgid == gpid && ev.Ret < 0 })
	for _, pid := range []int{gpid, o.pid} {
		if ok, err := l.Watched(pid); err != nil || ok {
			t.Errorf("Watched(%d) after exit = %v, %v; want false", pid, ok, err)
		}
	}
	if _, err := l.Lost(); err != nil {
		t.Errorf("Lost: %v", err)
	}
}

// TestRefusedBoundCallIsNotKilled: when the kernel refuses the bound call
// (here ENOENT: the vetted file vanished) the watchee holds nothing new and
// is left alone.
func TestRefusedBoundCallIsNotKilled(t *testing.T) {
	l, s := loadForTest(t)
	path := tempFile(t, t.TempDir())
	st := statOf(t, path)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	o := runHelper(t, l, "open", path, func(int) *Binding { return fileBinding(path, st) })
	if o.signal != 0 || o.report != "err no such file or directory" {
		t.Fatalf("watchee: signal %v, report %q; want ENOENT", o.signal, o.report)
	}
	ev := s.wait(t, "EXIT", func(ev *Event) bool { return ev.Tid == o.tid && ev.Type != EventEnter })
	if ev.Type != EventExit || ev.Ret != -int64(unix.ENOENT) || !ev.Flags.Has(FlagBound) || ev.Flags.Has(FlagHasObject) {
		t.Errorf("got %+v, want a bound EXIT with -ENOENT and no object", ev)
	}
}

// TestUnboundCallsAreNotKilled: a watched process without bindings runs
// normally even with capture on.
func TestUnboundCallsAreNotKilled(t *testing.T) {
	l, s := loadForTest(t, unix.SYS_OPENAT)
	path := tempFile(t, t.TempDir())
	o := runHelper(t, l, "open", path, nil)
	if o.signal != 0 || !strings.HasPrefix(o.report, "ok ") {
		t.Fatalf("watchee: signal %v, report %q", o.signal, o.report)
	}
	ev := s.wait(t, "EXIT", func(ev *Event) bool { return ev.Tid == o.tid && ev.Type == EventExit && ev.KPath == path })
	if ev.Flags.Has(FlagBound) || ev.Flags.Has(FlagKilled) {
		t.Errorf("unbound call flagged: %+v", ev)
	}
}

func BenchmarkBind(b *testing.B) {
	testenv.RequirePrivileged(b)
	l, err := Load(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	bind := &Binding{Nr: unix.SYS_OPENAT, Kind: BindFile, ArgIndex: 1, Arg: []byte("/etc/hostname"), Dev: unix.Mkdev(254, 0), Ino: 1234}
	const tid = 0x3ffffff1 // above pid_max: the binding is never checked
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	for b.Loop() {
		if err := l.Bind(tid, bind); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(threadCPU()-start)/float64(b.N), "cpu-ns/op")
	b.StopTimer()
	if err := l.Unbind(tid); err != nil {
		b.Fatal(err)
	}
}

// TestForkWithFullWatchedSetFailsClosed: when the watched set is full, a
// watched process that forks is killed (its child would run unchecked), the
// VIOLATION names the child, and the child dies at its first return to user
// mode although it is not watched.
func TestForkWithFullWatchedSetFailsClosed(t *testing.T) {
	l, s := loadForTest(t)
	marker := filepath.Join(t.TempDir(), "marker")
	var fill []int
	o := runHelper(t, l, "fork", marker, func(int) *Binding {
		// Fill every free slot with pids above pid_max.
		for pid := 0x3f000000; ; pid++ {
			if err := l.Watch(pid); err != nil {
				break
			}
			fill = append(fill, pid)
		}
		return nil
	})
	for _, pid := range fill {
		if err := l.Unwatch(pid); err != nil {
			t.Fatal(err)
		}
	}
	if len(fill) < MaxWatched-16 {
		t.Fatalf("filled only %d slots before Watch failed", len(fill))
	}
	if o.signal != syscall.SIGKILL {
		t.Fatalf("forking watchee: signal %v, report %q; want SIGKILL", o.signal, o.report)
	}
	ev := s.wait(t, "UNTRACKED", func(ev *Event) bool { return ev.Type == EventViolation && ev.Tgid == o.pid })
	if ev.Reason != ReasonUntracked || !ev.Flags.Has(FlagKilled|FlagHasChild) || ev.Args[0] == 0 || int(ev.Args[0]) == o.pid || ev.Child != int(ev.Args[0]) {
		t.Fatalf("got %+v, want UNTRACKED, killed, naming the child", ev)
	}
	untrackedChildKilled(t, s, ev.Child)
}
