package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/enforcer/testenv"
)

// TestStaticBinaryRunsWithoutSharedLibraries builds `make static` and runs
// scripts/static-smoke.sh: `vigil version` and `vigil run` in a chroot that
// holds nothing but vigil and a static busybox, so no libseccomp (no
// library at all) can be found on any library path.
func TestStaticBinaryRunsWithoutSharedLibraries(t *testing.T) {
	testenv.RequirePrivileged(t)
	out := t.TempDir()
	b, err := exec.Command("make", "-C", "../..", "static", "BIN="+out).CombinedOutput()
	if err != nil {
		t.Fatalf("make static: %v\n%s", err, b)
	}
	bin := filepath.Join(out, "vigil-static")
	b, err = exec.Command("../../scripts/static-smoke.sh", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("static-smoke.sh: %v\n%s", err, b)
	}
	for _, want := range []string{"linking:    static", "libseccomp: 2.", "runs without shared libraries"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("output lacks %q:\n%s", want, b)
		}
	}
}

func TestVersionSaysWhatRunsWhere(t *testing.T) {
	stdout, stderr, code := vigil(t, "version")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"vigil ", "module:     github.com/vigilsec/vigil", "libseccomp: ", "kernel:     Linux ", "linking:    dynamic", "CGO_ENABLED=1"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("vigil version lacks %q:\n%s", want, stdout)
		}
	}
	flag, _, code := vigil(t, "--version")
	if code != 0 || flag != stdout {
		t.Errorf("vigil --version (exit %d) differs from vigil version:\n%s", code, flag)
	}
	js, _, code := vigil(t, "version", "--json")
	if code != 0 || !strings.Contains(js, `"libseccomp": "2.`) || !strings.Contains(js, `"static": false`) {
		t.Errorf("vigil version --json (exit %d):\n%s", code, js)
	}
}

func TestGenDocsWritesManPagesAndCompletions(t *testing.T) {
	dir := t.TempDir()
	man, compl := filepath.Join(dir, "man8"), filepath.Join(dir, "completions")
	if _, stderr, code := vigil(t, "gen-docs", "--man", man, "--completions", compl); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, f := range []string{"man8/vigil.8", "man8/vigil-run.8", "man8/vigil-agent-seccomp-profile.8", "completions/vigil.bash", "completions/_vigil", "completions/vigil.fish"} {
		if s := slurp(t, filepath.Join(dir, f)); len(s) == 0 {
			t.Errorf("%s is empty", f)
		}
	}
	run := slurp(t, filepath.Join(man, "vigil-run.8"))
	if !strings.Contains(run, `--metrics-addr`) || strings.Contains(run, "gen-docs") {
		t.Errorf("vigil-run.8 does not document the flags, or names the hidden command:\n%s", run)
	}
	if _, _, code := vigil(t, "gen-docs"); code != 2 {
		t.Errorf("gen-docs without a directory: exit %d, want 2", code)
	}
}
