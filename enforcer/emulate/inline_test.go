package emulate_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// threadStatus is the calling thread's credential lines of
// /proc/thread-self/status (Uid, Gid, Groups, CapEff).
func threadStatus(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		for _, k := range []string{"Uid:", "Gid:", "Groups:", "CapEff:", "CapPrm:", "Umask:"} {
			if strings.HasPrefix(l, k) {
				keep = append(keep, l)
			}
		}
	}
	return strings.Join(keep, "\n")
}

// A watchee in vigil's namespaces, root and umask is served on the calling
// thread, with its own credentials — the file it creates is its own — and the
// thread has vigil's credentials back afterwards. One with another umask
// (process-wide state here) goes to a worker and gets the same result.
func TestInlineEmulationActsAsTheWatcheeAndGivesCredentialsBack(t *testing.T) {
	testenv.RequirePrivileged(t)
	_, work := workDir(t)
	if err := os.Chown(work, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	own := syscall.Umask(0o22)
	defer syscall.Umask(own)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := threadStatus(t)

	w := startWatchee(t, childOpts{dir: work, cred: &syscall.Credential{Uid: 1000, Gid: 1000, Groups: []uint32{2000}}})
	e := newEmulator(t)
	c := caller(w)
	w.must("umask 022")
	how := emulate.OpenHowFromFlags(unix.O_CREAT|unix.O_WRONLY, 0o666)
	if got := emulatedOpen(t, e, c, "inline", how); got != "ok" {
		t.Fatalf("emulated open: %s", got)
	}
	if n := len(e.Workers()); n != 0 {
		t.Errorf("a watchee sharing vigil's namespaces, root and umask started %d workers", n)
	}
	if after := threadStatus(t); after != before {
		t.Errorf("the thread's credentials changed:\nbefore\n%s\nafter\n%s", before, after)
	}
	// The watchee's own permission checks applied: it cannot create in a
	// directory only root may write.
	if err := os.Mkdir(filepath.Join(work, "rootonly"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := emulatedOpen(t, e, c, "rootonly/x", how); got != "err EACCES" {
		t.Errorf("create in a directory the watchee cannot write: %s, want EACCES", got)
	}
	w.must("umask 077")
	if got := emulatedOpen(t, e, c, "worker", how); got != "ok" {
		t.Fatalf("emulated open with another umask: %s", got)
	}
	if n := len(e.Workers()); n != 1 {
		t.Errorf("a watchee with another umask was served by %d workers, want 1", n)
	}
	for name, mode := range map[string]uint32{"inline": 0o644, "worker": 0o600} {
		uid, gid, m := statOf(t, filepath.Join(work, name))
		if uid != 1000 || gid != 1000 || m&0o777 != mode {
			t.Errorf("%s: %d:%d %o, want 1000:1000 %o", name, uid, gid, m&0o777, mode)
		}
	}
}

// An open whose target the caller resolved from the watchee's (and vigil's)
// root is performed on that very descriptor when the watchee has vigil's
// credentials and the open neither creates nor truncates; any other case is
// declined with the descriptor left to the caller, who prepares it the usual
// way.
func TestPrepareOpenResolvedOnlyForVigilsOwnCredentials(t *testing.T) {
	testenv.RequirePrivileged(t)
	_, work := workDir(t)
	target := filepath.Join(work, "f")
	if err := os.WriteFile(target, []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	obj, err := unix.Open(target, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if obj >= 0 {
			unix.Close(obj)
		}
	}()
	var st unix.Stat_t
	if err := unix.Fstat(obj, &st); err != nil {
		t.Fatal(err)
	}
	e := newEmulator(t)
	appendHow := emulate.OpenHowFromFlags(unix.O_WRONLY|unix.O_APPEND, 0)

	// Another fsuid: the emulator must look the path up as the watchee.
	other := startWatchee(t, childOpts{dir: work, cred: &syscall.Credential{Uid: 1000, Gid: 1000}})
	if p, ok := e.PrepareOpenResolved(caller(other), obj, st.Dev, st.Ino, st.Mode, appendHow); ok {
		p.Close()
		t.Fatal("a watchee with other credentials was served on vigil's lookup")
	}
	w := startWatchee(t, childOpts{dir: work})
	c := caller(w)
	for _, flags := range []int{unix.O_WRONLY | unix.O_TRUNC, unix.O_RDWR | unix.O_CREAT, unix.O_PATH} {
		if p, ok := e.PrepareOpenResolved(c, obj, st.Dev, st.Ino, st.Mode, emulate.OpenHowFromFlags(flags, 0o644)); ok {
			p.Close()
			t.Fatalf("flags %#x: an open with effects of its own was served on vigil's lookup", flags)
		}
	}
	if err := unix.Fstat(obj, &st); err != nil {
		t.Fatalf("a declined call closed the caller's descriptor: %v", err)
	}

	p, ok := e.PrepareOpenResolved(c, obj, st.Dev, st.Ino, st.Mode, appendHow)
	if !ok {
		t.Fatal("an append open by a watchee with vigil's credentials was declined")
	}
	obj = -1 // p's now
	defer p.Close()
	if !p.Exists || p.Dev != st.Dev || p.Ino != st.Ino {
		t.Fatalf("prepared %v %d:%d, want the given object %d:%d", p.Exists, p.Dev, p.Ino, st.Dev, st.Ino)
	}
	r, err := e.Open(p)
	if err != nil || r.Errno != 0 {
		t.Fatalf("open: %v %v", err, r.Errno)
	}
	defer unix.Close(r.Fd)
	if _, err := unix.Write(r.Fd, []byte("b")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "ab" {
		t.Fatalf("the file holds %q after an append through the emulated open, want \"ab\"", b)
	}
}
