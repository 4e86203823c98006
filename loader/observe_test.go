package loader

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/testenv"
)

// observedCall is a Call copied out of the reader's buffer.
type observedCall struct {
	nr, tgid, tid    int
	comm             string
	ret              int64
	flags            ObsFlags
	errors           ObsErrors
	path, kpath      string
	startOff         int
	startKind        StartKind
	start, root, obj ObjectIdent
}

func copyCall(c Call) observedCall {
	return observedCall{
		nr: c.Nr(), tgid: c.Tgid(), tid: c.Tid(), comm: string(c.Comm()), ret: c.Ret(),
		flags: c.Flags(), errors: c.Errors(), path: string(c.Path()), kpath: string(c.KPath()),
		startOff: c.StartOff(), startKind: c.StartKind(), start: c.Start(), root: c.Root(), obj: c.Object(),
	}
}

// observeShell runs sh -c script under a fresh Observer, watched from the
// line after its first read, and returns every call recorded.
func observeShell(t *testing.T, syscalls []int, script string) []observedCall {
	t.Helper()
	testenv.RequirePrivileged(t)
	o, err := LoadObserver(ObserverOptions{Syscalls: syscalls, Log: zerolog.Nop()})
	skipIfObserveUnsupported(t, err)
	if err != nil {
		t.Fatalf("LoadObserver: %v", err)
	}
	defer o.Close()
	var (
		mu    sync.Mutex
		calls []observedCall
	)
	done := make(chan error, 1)
	go func() {
		done <- o.ReadEvents(func(c Call) {
			mu.Lock()
			calls = append(calls, copyCall(c))
			mu.Unlock()
		}, func() {})
	}()
	cmd := exec.Command("sh", "-c", "read x; "+script)
	w, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := o.Watch(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("go\n"))
	w.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	if err := o.Sync(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if c, err := o.Counters(); err != nil || c.Lost != 0 || c.NoStorage != 0 {
		t.Errorf("counters %+v, %v: want nothing dropped", c, err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return calls
}

func TestObserverRecordsOpenWithObjectAndStart(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "file")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	calls := observeShell(t, []int{unix.SYS_OPENAT, unix.SYS_EXECVE}, "cd "+dir+" && cat file "+f+" >/dev/null")
	var st unix.Stat_t
	if err := unix.Stat(f, &st); err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(f)
	seen := map[string]bool{}
	for _, c := range calls {
		if c.comm == "" || c.tgid == 0 || c.tid == 0 {
			t.Errorf("call without comm or pid: %+v", c)
		}
		if c.nr != unix.SYS_OPENAT || (c.path != "file" && c.path != f) {
			continue
		}
		seen[c.path] = true
		if c.ret < 0 || !c.flags.Has(FlagObsHasRet|FlagObsHasPath|FlagObsHasObject|FlagObsStartFound) || c.errors != 0 {
			t.Fatalf("openat %q: %+v", c.path, c)
		}
		if c.kpath != real || c.obj.Ino != st.Ino || c.obj.Dev != st.Dev {
			t.Errorf("openat %q: kernel object %q %+v, want %q dev %d ino %d", c.path, c.kpath, c.obj, real, st.Dev, st.Ino)
		}
		want := "/file"
		kind := StartCwd
		if c.path == f {
			want, kind = real, StartRoot
		}
		if c.startKind != kind || c.kpath[c.startOff:] != want {
			t.Errorf("openat %q: start %s, below it %q; want %s, %q", c.path, c.startKind, c.kpath[c.startOff:], kind, want)
		}
	}
	if !seen["file"] || !seen[f] {
		t.Fatalf("opens of file and %s not both recorded among %d calls", f, len(calls))
	}
}

// TestObserverCountsWhatTheRingBufferCannotHold fills a one-page ring
// buffer nobody reads: the records that do not fit are counted as lost,
// never dropped silently.
func TestObserverCountsWhatTheRingBufferCannotHold(t *testing.T) {
	testenv.RequirePrivileged(t)
	o, err := LoadObserver(ObserverOptions{Syscalls: []int{unix.SYS_OPENAT}, RingBufferSize: os.Getpagesize(), Log: zerolog.Nop()})
	skipIfObserveUnsupported(t, err)
	if err != nil {
		t.Fatalf("LoadObserver: %v", err)
	}
	defer o.Close()
	cmd := exec.Command("sh", "-c", "read x; for i in 1 2 3 4 5 6 7 8 9 10; do cat /etc/hostname /etc/hostname; done >/dev/null")
	w, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := o.Watch(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("go\n"))
	w.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	c, err := o.Counters()
	if err != nil {
		t.Fatal(err)
	}
	// Ten cats open libc, locale files and /etc/hostname twice: far more
	// than the 4 KiB of records a page holds.
	if c.Lost == 0 {
		t.Fatalf("counters %+v: nothing counted lost from a full one-page ring buffer", c)
	}
	var n int
	go o.ReadEvents(func(Call) { n++ }, func() {})
	if err := o.Sync(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("the records that fit were not delivered")
	}
	t.Logf("%d records delivered, %d lost", n, c.Lost)
}

// TestObserverCloseEndsReadEvents: Close wakes a ReadEvents waiting on an
// idle ring buffer, which returns nil, and unmaps the ring only after it
// has let go; a ReadEvents after Close returns at once.
func TestObserverCloseEndsReadEvents(t *testing.T) {
	testenv.RequirePrivileged(t)
	o, err := LoadObserver(ObserverOptions{Syscalls: []int{unix.SYS_OPENAT}, Log: zerolog.Nop()})
	skipIfObserveUnsupported(t, err)
	if err != nil {
		t.Fatalf("LoadObserver: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- o.ReadEvents(func(Call) {}, func() {}) }()
	time.Sleep(2 * ObservePollInterval) // let it block in its wait
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ReadEvents after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadEvents still running 5s after Close")
	}
	if err := o.ReadEvents(func(Call) {}, func() {}); err != nil {
		t.Fatalf("ReadEvents on a closed Observer: %v", err)
	}
}

// skipIfObserveUnsupported skips on a kernel older than the observe
// programs need (Debian's 6.1 in the kernel matrix): the platform decides,
// and LoadObserver must say so plainly rather than fail some other way.
func skipIfObserveUnsupported(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, ErrObserveNeedsNewerKernel) {
		var u unix.Utsname
		_ = unix.Uname(&u)
		t.Skipf("%v (this is %s)", err, unix.ByteSliceToString(u.Release[:]))
	}
}
