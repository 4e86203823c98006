// Package testenv holds what vigil's privileged tests share: the decision to
// skip or fail when the machine cannot run them, and building the C probe.
package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// RequirePrivileged skips t unless it runs as root on a kernel with seccomp
// user notification. With VIGIL_REQUIRE_PRIVILEGED=1 (set by .ci/run) the
// skip becomes a failure, so CI can never pass by skipping.
func RequirePrivileged(t testing.TB) {
	t.Helper()
	reason := ""
	switch {
	case os.Geteuid() != 0:
		reason = "needs root (reads other processes' memory, installs seccomp filters)"
	case runtime.GOARCH != "amd64":
		reason = "vigil decodes x86_64 syscalls only"
	default:
		var sizes [3]uint16
		if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_NOTIF_SIZES, 0, uintptrOf(&sizes)); e != 0 {
			reason = "kernel lacks seccomp user notification: " + e.Error()
		}
	}
	if reason == "" {
		return
	}
	if os.Getenv("VIGIL_REQUIRE_PRIVILEGED") == "1" {
		t.Fatalf("privileged test cannot run: %s (VIGIL_REQUIRE_PRIVILEGED=1)", reason)
	}
	t.Skip(reason)
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// RepoRoot returns the repository root, found from this source file.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Bin builds the C probe, the reference supervisor and the signal-storm
// watchee once per test binary and returns the path of the named one
// ("probe", "refsup" or "storm").
func Bin(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "vigil-testbin-")
		if buildErr != nil {
			return
		}
		// Watchees in user namespaces run as unprivileged host ids.
		if buildErr = os.Chmod(buildDir, 0o755); buildErr != nil {
			return
		}
		root := RepoRoot()
		for _, b := range []struct{ out, src string }{
			{"probe", "enforcer/testdata/probe/probe.c"},
			{"refsup", "scripts/refsup.c"},
			{"storm", "enforcer/testdata/storm/storm.c"},
		} {
			cmd := exec.Command("gcc", "-O2", "-Wall", "-pthread", "-o", filepath.Join(buildDir, b.out), filepath.Join(root, b.src))
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = &buildError{src: b.src, out: string(out), err: err}
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatalf("building C helpers: %v", buildErr)
	}
	return filepath.Join(buildDir, name)
}

type buildError struct {
	src, out string
	err      error
}

func (e *buildError) Error() string { return e.src + ": " + e.err.Error() + "\n" + e.out }

// ThreadStacks returns the stat line and kernel stack of every thread of
// process pid: where a run that did not finish waits (a watchee thread in
// seccomp_do_user_notification is a call nobody answers).
func ThreadStacks(pid int) string {
	var b strings.Builder
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	tasks, _ := os.ReadDir(dir)
	for _, tk := range tasks {
		stat, _ := os.ReadFile(dir + tk.Name() + "/stat")
		stack, _ := os.ReadFile(dir + tk.Name() + "/stack")
		fmt.Fprintf(&b, "task %s: %s\n%s", tk.Name(), bytes.TrimSpace(stat), stack)
	}
	return b.String()
}

// Buffer is a bytes.Buffer that a goroutine under test may write while the
// test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// Bytes returns a copy of what was written so far.
func (b *Buffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

// String returns what was written so far.
func (b *Buffer) String() string { return string(b.Bytes()) }
