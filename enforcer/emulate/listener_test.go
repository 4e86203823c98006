package emulate_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/args"
	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/filter"
	"github.com/vigilsec/vigil/enforcer/launch"
	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// serveOpens is a minimal notify loop that emulates every trapped openat,
// the way the enforcer does: prepare, check the notification is still
// pending, evaluate the policy on the prepared object, open, install.
func serveOpens(t *testing.T, l *notify.Listener, pid int, e *emulate.Emulator, denied string, emulatedOpens *atomic.Int64) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var n notify.Notif
	buf := make([]byte, args.PathMax)
	answer := func(errno unix.Errno) {
		_ = l.Send(&notify.Resp{ID: n.ID, Error: -int32(errno)})
	}
	for {
		if err := l.Recv(&n); err != nil {
			if errors.Is(err, notify.ErrInterrupted) {
				continue
			}
			return
		}
		if n.Data.Nr != unix.SYS_OPENAT {
			answer(unix.ENOSYS)
			continue
		}
		c := emulate.Caller{Pid: pid, Tid: int(n.Pid)}
		m, err := args.ReadPath(c.Tid, n.Data.Args[1], buf)
		if err != nil {
			answer(args.Errno(err))
			continue
		}
		how := emulate.OpenHowFromFlags(int(n.Data.Args[2]), uint32(n.Data.Args[3]))
		p, err := e.PrepareOpen(c, int(int32(n.Data.Args[0])), string(buf[:m]), how)
		if err != nil {
			answer(emulate.Errno(err))
			continue
		}
		if l.Valid(n.ID) != nil {
			p.Close()
			continue
		}
		if p.Path == denied {
			p.Close()
			answer(unix.EACCES)
			continue
		}
		r, err := e.Open(p)
		p.Close()
		switch {
		case err != nil:
			answer(emulate.Errno(err))
		case r.Errno != 0:
			answer(r.Errno)
		default:
			emulatedOpens.Add(1)
			if _, err := emulate.InstallFd(l, n.ID, &r); err != nil {
				var errno unix.Errno
				if errors.As(err, &errno) {
					answer(errno)
				}
			}
		}
	}
}

func TestOpensThroughListenerBehaveAsWithoutVigil(t *testing.T) {
	testenv.RequirePrivileged(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	denied := filepath.Join(dir, "denied")
	if err := os.WriteFile(denied, []byte("no\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	prog, err := filter.Compile(filter.Spec{Notify: []int{unix.SYS_OPENAT}, NoHardening: true})
	if err != nil {
		t.Fatal(err)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	bin := childBinary(t)
	wt, err := launch.Start(launch.Config{
		Path: bin, Args: []string{bin}, Env: []string{"VIGIL_EMULATE_CHILD=1"}, Dir: dir,
		Program: prog, Stdin: inR, Stdout: outW, Stderr: os.Stderr,
	})
	inR.Close()
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	e := newEmulator(t)
	var opens atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		serveOpens(t, wt.Listener(), wt.Pid(), e, denied, &opens)
	}()
	if err := wt.Proceed(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewReader(outR)
	do := func(format string, a ...any) string {
		t.Helper()
		if _, err := fmt.Fprintf(inW, format+"\n", a...); err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		go func() { s, _ := lines.ReadString('\n'); got <- strings.TrimSpace(s) }()
		select {
		case s := <-got:
			return s
		case <-time.After(20 * time.Second):
			t.Fatalf("watchee: no answer to %q", fmt.Sprintf(format, a...))
		}
		return ""
	}
	defer func() {
		_, _ = io.WriteString(inW, "exit\n")
		inW.Close()
		if _, err := wt.Wait(); err != nil {
			t.Error(err)
		}
		// With no task left on the filter, RECV fails and the loop ends.
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("notify loop did not end")
		}
		wt.Listener().Close()
	}()

	// Descriptor flags and file status flags, compared with a native open.
	for _, flags := range []int{unix.O_RDONLY, unix.O_RDONLY | unix.O_CLOEXEC, unix.O_WRONLY | unix.O_APPEND, unix.O_RDWR | unix.O_NONBLOCK | unix.O_CLOEXEC} {
		res := do("openkeep %s %#x 0", file, flags)
		fd, ok := strings.CutPrefix(res, "ok ")
		if !ok {
			t.Fatalf("emulated open %#x: %s", flags, res)
		}
		got := do("getfl %s", fd)
		nfd, err := unix.Open(file, flags, 0)
		if err != nil {
			t.Fatal(err)
		}
		fl, _ := unix.FcntlInt(uintptr(nfd), unix.F_GETFL, 0)
		fdfl, _ := unix.FcntlInt(uintptr(nfd), unix.F_GETFD, 0)
		unix.Close(nfd)
		if want := fmt.Sprintf("ok %#x %d", fl, fdfl); got != want {
			t.Errorf("open %#x: F_GETFL/F_GETFD in the watchee %s, natively %s", flags, got, want)
		}
		do("close %s", fd)
	}
	if got := do("open %s 0x0 0", denied); got != "err EACCES" {
		t.Errorf("open of the denied file: %s", got)
	}
	// EMFILE at the watchee's rlimit: every slot below it is filled, and the
	// next open fails as without vigil.
	if got := do("rlimit 24"); got != "ok" {
		t.Fatal(got)
	}
	got := do("fill")
	if !strings.HasPrefix(got, "ok ") {
		t.Fatalf("fill: %s", got)
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", wt.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	below := 0
	for _, en := range ents {
		if n := dec(en.Name()); n < 24 {
			below++
		}
	}
	if below != 24 {
		t.Errorf("watchee holds %d of its 24 slots after filling to RLIMIT_NOFILE through vigil", below)
	}
	if got := do("open %s 0x0 0", file); got != "err EMFILE" {
		t.Errorf("open at the rlimit: %s, want err EMFILE", got)
	}
	if opens.Load() < 20 {
		t.Errorf("only %d opens were emulated", opens.Load())
	}
}
