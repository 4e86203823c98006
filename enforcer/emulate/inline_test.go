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
