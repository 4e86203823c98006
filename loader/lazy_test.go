package loader

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/testenv"
)

// lazyIdle is the DetachIdle of these tests: short, so that they wait little.
const lazyIdle = 20 * time.Millisecond

// loadLazy loads with the syscall tracepoints attached on demand and waits
// until the detacher has detached them.
func loadLazy(t *testing.T) (*Loader, *sink) {
	t.Helper()
	testenv.RequirePrivileged(t)
	l, err := Load(Options{DetachIdle: lazyIdle, Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	s := startSink(t, l)
	waitAttached(t, l, false)
	return l, s
}

// waitAttached waits up to 5 s until the syscall tracepoints are attached
// (want) or detached.
func waitAttached(t *testing.T, l *Loader, want bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, _, _ := l.SyscallTracepointsAttached(); got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("syscall tracepoints attached = %v after 5s, want %v", !want, want)
		}
		time.Sleep(lazyIdle / 4)
	}
}

// rawEpoch reads the view epoch without attaching anything (ViewEpoch would).
func rawEpoch(l *Loader) uint64 {
	l.bindMu.Lock()
	defer l.bindMu.Unlock()
	return atomic.LoadUint64(l.viewEpoch())
}

// waitInSyscall waits up to 10 s until thread tid of pid sleeps in syscall nr
// (its /proc syscall file names it).
func waitInSyscall(t *testing.T, pid, tid, nr int) {
	t.Helper()
	file := "/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(tid) + "/syscall"
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(file)
		if err == nil && strings.HasPrefix(string(b), strconv.Itoa(nr)+" ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("thread %d not in syscall %d after 10s (%q, %v)", tid, nr, b, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLazyTracepointsFollowTheirUse: the syscall tracepoints start attached,
// go when nothing uses them, come back with a Bind or a ViewEpoch (which
// moves the epoch: nothing counted changes meanwhile), and stay while a
// binding, a doomed child or an exec's move of a binding is pending.
func TestLazyTracepointsFollowTheirUse(t *testing.T) {
	l, _ := loadLazy(t)
	if _, attaches, detaches := l.SyscallTracepointsAttached(); attaches != 1 || detaches != 1 {
		t.Fatalf("after load and idle: %d attaches, %d detaches; want 1, 1", attaches, detaches)
	}

	before := rawEpoch(l)
	epoch, ok := l.ViewEpoch()
	if !ok || epoch <= before {
		t.Fatalf("ViewEpoch after idle = %d, %v; want past %d (the attach moves it)", epoch, ok, before)
	}
	if attached, _, _ := l.SyscallTracepointsAttached(); !attached {
		t.Fatal("ViewEpoch left the tracepoints detached")
	}
	if again, _ := l.ViewEpoch(); again != epoch {
		t.Errorf("ViewEpoch while attached moved: %d then %d", epoch, again)
	}
	waitAttached(t, l, false)

	// A binding nobody consumes (this test's own thread never makes the
	// bound call) keeps them attached until it is withdrawn.
	tid := unix.Gettid()
	if err := l.Bind(tid, &Binding{Nr: unix.SYS_OPENAT, Kind: BindFile, ArgIndex: 1, Arg: []byte("/nonexistent"), Dev: 1, Ino: 1}); err != nil {
		t.Fatal(err)
	}
	if attached, _, _ := l.SyscallTracepointsAttached(); !attached {
		t.Fatal("Bind left the tracepoints detached")
	}
	time.Sleep(10 * lazyIdle)
	if attached, _, _ := l.SyscallTracepointsAttached(); !attached {
		t.Fatal("detached while a binding was pending")
	}
	if err := l.Unbind(tid); err != nil {
		t.Fatal(err)
	}
	waitAttached(t, l, false)

	// A doomed child that has not yet returned to user mode does too.
	if _, ok := l.ViewEpoch(); !ok {
		t.Fatal("ViewEpoch failed")
	}
	if err := l.objs.DoomedPending.Set(uint64(1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * lazyIdle)
	attached, _, _ := l.SyscallTracepointsAttached()
	if err := l.objs.DoomedPending.Set(uint64(0)); err != nil {
		t.Fatal(err)
	}
	if !attached {
		t.Fatal("detached while a doomed child was pending")
	}
	waitAttached(t, l, false)

	// So does an exec moving a binding between slots (begun, not done): in
	// between, the binding is in none.
	if _, ok := l.ViewEpoch(); !ok {
		t.Fatal("ViewEpoch failed")
	}
	var done uint64
	if err := l.objs.ExecMovesDone.Get(&done); err != nil {
		t.Fatal(err)
	}
	if err := l.objs.ExecMovesBegun.Set(done + 1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * lazyIdle)
	attached, _, _ = l.SyscallTracepointsAttached()
	if err := l.objs.ExecMovesDone.Set(done + 1); err != nil {
		t.Fatal(err)
	}
	if !attached {
		t.Fatal("detached while an exec was moving a binding")
	}
	waitAttached(t, l, false)
}

// TestLazyBoundCallThatEnteredDetachedIsChecked: a call that entered while
// the syscall tracepoints were detached never runs sys_enter; its binding,
// written after (the attach comes with it), is still checked at sys_exit:
// the vetted file passes, another file kills. The open blocks on a FIFO
// until this test opens the other end, so the binding is written while the
// call is inside the kernel, as the enforcer writes one while the call waits
// in seccomp.
func TestLazyBoundCallThatEnteredDetachedIsChecked(t *testing.T) {
	l, s := loadLazy(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	other := tempFile(t, dir)
	for _, tc := range []struct {
		name    string
		vetted  string
		killed  bool
		wantWhy Reason
	}{
		{"vetted file", fifo, false, ReasonOK},
		{"another file", other, true, ReasonObjectMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			waitAttached(t, l, false)
			st := statOf(t, tc.vetted)
			var writer *os.File
			o := runHelperRun(t, l, helperRun{mode: "open", path: fifo, callNr: unix.SYS_OPENAT,
				bind: func(int) *Binding {
					if attached, _, _ := l.SyscallTracepointsAttached(); attached {
						t.Error("the tracepoints were attached when the call entered: nothing tested")
					}
					return fileBinding(fifo, st)
				},
				inCall: func(int) {
					var err error
					// The helper's open waits for a writer.
					if writer, err = os.OpenFile(fifo, os.O_WRONLY, 0); err != nil {
						t.Error(err)
					}
				}})
			if writer != nil {
				writer.Close()
			}
			if tc.killed {
				if o.signal != syscall.SIGKILL || o.report != "" {
					t.Fatalf("watchee: signal %v, report %q; want SIGKILL before user mode", o.signal, o.report)
				}
				ev := s.wait(t, "VIOLATION", func(ev *Event) bool { return ev.Tid == o.tid && ev.Type == EventViolation })
				if ev.Reason != tc.wantWhy || !ev.Flags.Has(FlagKilled|FlagBound|FlagAtExit) {
					t.Errorf("got %+v, want %v at sys_exit, killed", ev, tc.wantWhy)
				}
				return
			}
			if o.signal != 0 || !strings.HasPrefix(o.report, "ok ") {
				t.Fatalf("watchee: signal %v, report %q; want the vetted open to stand", o.signal, o.report)
			}
			ev := s.wait(t, "EXIT", func(ev *Event) bool { return ev.Tid == o.tid && ev.Type == EventExit })
			if ev.Reason != ReasonOK || !ev.Flags.Has(FlagBound|FlagAtExit|FlagHasObject) || ev.Flags.Has(FlagKilled) || ev.Ino != st.Ino {
				t.Errorf("got %+v, want a confirmed bound open of inode %d", ev, st.Ino)
			}
		})
	}
}

// TestCommEpochCountsTheRenamesOfWatchedThreads: task_rename and
// sched_process_exec, attached for good, move the comm epoch when a watched
// thread names itself (a write to /proc/self/comm, as PR_SET_NAME does) or
// execs, while the syscall tracepoints are detached too, and not for the
// rest of the host.
func TestCommEpochCountsTheRenamesOfWatchedThreads(t *testing.T) {
	l, _ := loadLazy(t)
	start, ok := l.CommEpoch()
	if !ok {
		t.Fatal("CommEpoch failed")
	}
	if err := exec.Command("/bin/sh", "-c", "printf other > /proc/self/comm; exec /bin/true").Run(); err != nil {
		t.Fatal(err)
	}
	if n, _ := l.CommEpoch(); n != start {
		t.Fatalf("an unwatched rename and exec moved the epoch from %d to %d", start, n)
	}

	cmd := exec.Command("/bin/sh", "-c", "read line; printf renamed > /proc/self/comm; read line; exec /bin/true")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Start returns once the exec closed the child's close-on-exec pipe,
	// before sched_process_exec fires: watch it only once sh reads.
	waitInSyscall(t, cmd.Process.Pid, cmd.Process.Pid, unix.SYS_READ)
	if err := l.Watch(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	// The name is copied after the tracepoint ran.
	comm := fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if b, _ := os.ReadFile(comm); string(b) == "renamed\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sh did not rename itself")
		}
	}
	if n, _ := l.CommEpoch(); n != start+1 {
		t.Errorf("after one watched rename the epoch is %d, want %d", n, start+1)
	}
	if _, err := in.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if n, _ := l.CommEpoch(); n <= start+1 {
		t.Errorf("a watched exec left the epoch at %d", n)
	}
	if attached, _, _ := l.SyscallTracepointsAttached(); attached {
		t.Error("reading the comm epoch attached the syscall tracepoints")
	}
}
