package enforcer_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/testenv"
)

// Issue 9, bypass 2: an open that truncates acts before any sys_exit check,
// so it is emulated on the vetted object or refused, never continued. The
// races below truncate a protected file through a naive supervisor (the
// teeth) and never through vigil's default mode.

type truncFixture struct {
	dir, protected, allowed string
}

func newTruncFixture(t *testing.T) (truncFixture, string) {
	t.Helper()
	dir := t.TempDir()
	f := truncFixture{dir: dir, protected: filepath.Join(dir, "protected", "secret"), allowed: filepath.Join(dir, "allowed")}
	if err := os.Mkdir(filepath.Join(dir, "protected"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The rule mirrors the default policy's system-binaries-readonly:
	// reading is fine, writing, creating and truncating are not.
	pol := fmt.Sprintf(`version: 1
rules:
  - name: readonly
    syscalls: [open, openat, openat2, creat]
    match:
      path: ["%s/protected/**"]
      flags: { any: [O_WRONLY, O_RDWR, O_CREAT, O_TRUNC] }
    action: deny
    errno: EACCES
`, dir)
	return f, pol
}

func (f truncFixture) reset(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(f.protected, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.allowed, []byte("scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f truncFixture) truncated(t *testing.T) bool {
	t.Helper()
	b, err := os.ReadFile(f.protected)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) != "precious\n"
}

func TestTruncatingOpensThroughASwappedFIFODecoyNeverTruncate(t *testing.T) {
	testenv.RequirePrivileged(t)
	self, _ := os.Executable()
	f, polText := newTruncFixture(t)
	pol := mustPolicy(t, polText)
	fifo := filepath.Join(f.dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o666); err != nil {
		t.Fatal(err)
	}
	link, other := filepath.Join(f.dir, "link"), filepath.Join(f.dir, "other")
	setup := func() {
		f.reset(t)
		os.Remove(link)
		os.Remove(other)
		if err := os.Symlink(fifo, link); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(f.protected, other); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("VIGIL_TEST_HELPER", "swap-trunc")
	argv := []string{self, link, other, "2000"}
	hits := 0
	for i := 0; i < 5 && hits == 0; i++ {
		setup()
		supervise(t, pol, argv, naive())
		if f.truncated(t) {
			hits++
		}
	}
	if hits == 0 {
		t.Fatal("the naive supervisor never truncated the protected file in 5 runs: the race has no teeth")
	}
	for i := 0; i < 5; i++ {
		setup()
		r := supervise(t, pol, argv)
		if f.truncated(t) {
			t.Fatalf("run %d: the protected file was truncated through the FIFO decoy (%s)", i, strings.TrimSpace(r.stdout))
		}
	}
}

func TestReopeningASwappedDescriptorNeverTruncates(t *testing.T) {
	testenv.RequirePrivileged(t)
	self, _ := os.Executable()
	f, polText := newTruncFixture(t)
	pol := mustPolicy(t, polText)
	t.Setenv("VIGIL_TEST_HELPER", "fd-swap-trunc")
	argv := []string{self, f.allowed, f.protected, "2000"}
	hits := 0
	for i := 0; i < 5 && hits == 0; i++ {
		f.reset(t)
		supervise(t, pol, argv, naive())
		if f.truncated(t) {
			hits++
		}
	}
	if hits == 0 {
		t.Fatal("the naive supervisor never truncated the protected file in 5 runs: the race has no teeth")
	}
	opened := 0
	for i := 0; i < 5; i++ {
		f.reset(t)
		r := supervise(t, pol, argv)
		if f.truncated(t) {
			t.Fatalf("run %d: the protected file was truncated through /proc/self/fd/50 (%s)", i, strings.TrimSpace(r.stdout))
		}
		var n int
		fmt.Sscanf(strings.TrimSpace(r.stdout), "ok %d", &n)
		opened += n
	}
	if opened == 0 {
		t.Fatal("no reopen of the allowed file succeeded: vigil refuses what it should emulate")
	}
}

// A descriptor of a protected file, taken with O_PATH (which the rule
// allows: it opens nothing for writing), stays the protected file when
// reopened through its magic link.
func TestMagicLinksAreTheirObjects(t *testing.T) {
	testenv.RequirePrivileged(t)
	self, _ := os.Executable()
	f, polText := newTruncFixture(t)
	f.reset(t)
	t.Setenv("VIGIL_TEST_HELPER", "opath-reopen")
	r := supervise(t, mustPolicy(t, polText), []string{self, f.protected})
	if got := strings.TrimSpace(r.stdout); got != "err EACCES\nerr EACCES" {
		t.Fatalf("reopening a protected file's O_PATH descriptor for writing: %q, want EACCES twice", got)
	}
	// The allowed file reopens fine, emulated on the object itself.
	r = supervise(t, mustPolicy(t, polText), []string{self, f.allowed})
	if got := strings.TrimSpace(r.stdout); got != "ok\nok" {
		t.Fatalf("reopening an allowed file: %q", got)
	}
	n := 0
	for _, rec := range r.records {
		spelled := rec.Args.Path
		if rec.Syscall == "openat" && (strings.HasPrefix(spelled, "/proc/") || strings.HasPrefix(spelled, "/dev/fd/")) && rec.Args.Resolved == f.allowed {
			if !rec.Emulated {
				t.Errorf("reopen through a magic link not emulated: %v", rec)
			}
			n++
		}
	}
	if n != 2 {
		t.Errorf("want 2 records naming the allowed file as the object, got %d", n)
	}
}
