package enforcer_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// Issue 9, false kills: a file replaced atomically under its name (written
// to a temporary name, renamed over — editors, package managers, logrotate)
// is the same name in the same view, so no path rule's verdict can differ
// for the new object, and a bound open or exec of it must not be killed.

// replacer keeps renaming fresh copies of content over target until stop.
func replacer(t *testing.T, target string, content []byte, mode os.FileMode) (stop func() int) {
	t.Helper()
	var done atomic.Bool
	var n atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tmp := target + ".tmp"
		for !done.Load() {
			if err := os.WriteFile(tmp, content, mode); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(tmp, target); err != nil {
				t.Error(err)
				return
			}
			n.Add(1)
		}
	}()
	return func() int {
		done.Store(true)
		wg.Wait()
		return int(n.Load())
	}
}

func boundPolicy(t *testing.T, dir string) string {
	// A path rule on the open family and exec makes every open and exec
	// content-dependent, hence bound.
	return fmt.Sprintf(`version: 1
rules:
  - syscalls: [open, openat, execve]
    match: { path: ["%s/never/**"] }
    action: deny
`, dir)
}

func TestReadersOfAtomicallyReplacedFilesAreNotKilled(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	dir := t.TempDir()
	target := filepath.Join(dir, "config")
	if err := os.WriteFile(target, []byte("v0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pol := mustPolicy(t, boundPolicy(t, dir))
	for run := 0; run < 5; run++ {
		stop := replacer(t, target, []byte("new\n"), 0o644)
		r := supervise(t, pol, []string{probe, "loop", "3000", target})
		replaced := stop()
		if r.code != 0 || strings.TrimSpace(r.stdout) != "ok" {
			t.Fatalf("run %d: exit %d, %q (killed while the file was replaced %d times)", run, r.code, r.stdout, replaced)
		}
		mismatches := 0
		for _, rec := range r.find("openat", target) {
			if rec.Verified == audit.VerifiedMismatch {
				mismatches++
			}
		}
		if mismatches != 0 {
			t.Fatalf("run %d: %d opens recorded as mismatches", run, mismatches)
		}
	}
}

func TestExecOfAnAtomicallyUpgradedBinaryIsNotKilled(t *testing.T) {
	testenv.RequirePrivileged(t)
	dir := t.TempDir()
	bin, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "tool")
	if err := os.WriteFile(target, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	pol := mustPolicy(t, boundPolicy(t, dir))
	for run := 0; run < 3; run++ {
		stop := replacer(t, target, bin, 0o755)
		r := supervise(t, pol, []string{"sh", "-c", fmt.Sprintf("i=0; while [ $i -lt 150 ]; do %s || exit 3; i=$((i+1)); done; echo ok", target)})
		stop()
		if r.code != 0 || strings.TrimSpace(r.stdout) != "ok" {
			for _, rec := range r.find("execve", target) {
				if rec.Verified != audit.VerifiedKernel {
					t.Logf("%v", rec)
				}
			}
			t.Fatalf("run %d: exit %d, %q", run, r.code, r.stdout)
		}
	}
}
