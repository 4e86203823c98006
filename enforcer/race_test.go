package enforcer_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// raceFixture is a directory with an allowed and a denied file whose paths
// have the same length (so a flipping writer never produces a torn third
// path), the symlink-swap pair, and a policy denying the denied file.
type raceFixture struct {
	dir, allowed, denied string
	pol                  *policy.Policy
}

func newRaceFixture(t *testing.T) raceFixture {
	t.Helper()
	dir := t.TempDir()
	f := raceFixture{dir: dir, allowed: filepath.Join(dir, "A"), denied: filepath.Join(dir, "D")}
	for p, content := range map[string]string{f.allowed: "ALLOWED\n", f.denied: "DENIED\n", filepath.Join(dir, "name"): "ALLOWED\n"} {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(f.denied, filepath.Join(dir, "other")); err != nil {
		t.Fatal(err)
	}
	f.pol = mustPolicy(t, fmt.Sprintf(`version: 1
rules:
  - name: no-denied
    syscalls: [open, openat, openat2]
    match: { path: [%q] }
    action: deny
    errno: EACCES
`, f.denied))
	return f
}

// raceRun is one supervised race: how many opens of the denied file the
// watchee got away with, and how it ended.
type raceRun struct {
	bypasses int
	code     int
	summary  string
}

func runRace(t *testing.T, f raceFixture, kind string, opts ...runOpt) raceRun {
	t.Helper()
	probe := testenv.Bin(t, "probe")
	var argv []string
	switch kind {
	case "flip":
		argv = []string{probe, "flip", f.allowed, f.denied, "5000", "4"}
	case "swap":
		argv = []string{probe, "swap", f.dir, "5000", "4"}
	}
	r := supervise(t, f.pol, argv, opts...)
	run := raceRun{code: r.code}
	for _, l := range lines(r.stdout) {
		switch {
		case l == "BYPASS":
			run.bypasses++
		case strings.HasPrefix(l, "ok "):
			run.summary = l
		}
	}
	return run
}

// TestRacesBypassANaiveSupervisor is the teeth of the binding tests: with
// an unverified CONTINUE (the kernel re-reads the path after vigil vetted
// it), both races reach the denied file.
func TestRacesBypassANaiveSupervisor(t *testing.T) {
	testenv.RequirePrivileged(t)
	for _, kind := range []string{"flip", "swap"} {
		t.Run(kind, func(t *testing.T) {
			f := newRaceFixture(t)
			total := 0
			for i := 0; i < 5 && total == 0; i++ {
				total += runRace(t, f, kind, naive()).bypasses
			}
			if total == 0 {
				t.Fatalf("%s race: no bypass of a naive supervisor in 5 runs; the race test has no teeth", kind)
			}
		})
	}
}

// TestRacesNeverReachTheDeniedFile runs the same races with the eBPF
// binding: every open that would hand the watchee the denied file is killed
// before it returns to user mode, so no BYPASS line is ever printed.
func TestRacesNeverReachTheDeniedFile(t *testing.T) {
	testenv.RequirePrivileged(t)
	for _, kind := range []string{"flip", "swap"} {
		t.Run(kind, func(t *testing.T) {
			f := newRaceFixture(t)
			killed := 0
			for i := 0; i < 8; i++ {
				r := runRace(t, f, kind)
				if r.bypasses != 0 {
					t.Fatalf("%s race run %d: %d opens reached the denied file despite the binding (%s)", kind, i, r.bypasses, r.summary)
				}
				if r.code == 128+9 {
					killed++
				}
			}
			if killed == 0 {
				t.Fatalf("%s race: the watchee was never killed in 8 runs, so the race never happened; the test has no teeth", kind)
			}
		})
	}
}
