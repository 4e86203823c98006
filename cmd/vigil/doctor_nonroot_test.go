package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/enforcer/testenv"
)

// TestDoctorAsNobodySaysWhatItCannotDo runs vigil doctor and vigil run as
// uid 65534 (setpriv, as `su nobody` would): the doctor must not say vigil
// can run when the default `vigil run` then refuses, and must say why.
func TestDoctorAsNobodySaysWhatItCannotDo(t *testing.T) {
	testenv.RequirePrivileged(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv (util-linux) is needed: %v", err)
	}
	// A copy nobody can execute: the test's temp dirs are 0700.
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "vigil")
	b, err := os.ReadFile(vigilBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	asNobody := func(args ...string) (string, string, int) {
		cmd := exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", bin}, args...)...)
		cmd.Dir = dir
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), code
	}
	stdout, stderr, code := asNobody("doctor")
	if code != 1 || strings.Contains(stdout, "vigil can run: yes") || !strings.Contains(stdout, "vigil can run: no") {
		t.Fatalf("doctor as nobody: exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
	}
	for _, want := range []string{"what uid 65534 (not root) cannot do here:", "the eBPF binding cannot be loaded as uid 65534", "vigil agent:"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("doctor as nobody lacks %q:\n%s", want, stdout)
		}
	}
	// What the doctor says is what happens.
	if _, stderr, code := asNobody("run", "--", "true"); code != 2 || !strings.Contains(stderr, "needs the eBPF binding") {
		t.Errorf("run as nobody: exit %d, stderr %q", code, stderr)
	}
	if _, stderr, code := asNobody("run", "--unverified", "--", "true"); code != 0 {
		t.Errorf("run --unverified as nobody: exit %d, stderr %q", code, stderr)
	}
}
