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
	// A policy whose only content-dependent rule is on bind needs the
	// emulator alone: vigil performs a bare name's bind as nobody, and
	// refuses a path with directories (no private mount namespace without
	// root), as the doctor says.
	if !strings.Contains(stdout, "bind_private_view") || !strings.Contains(stdout, "cloning the parent's mount: operation not permitted") {
		t.Errorf("doctor as nobody does not say binds with directories are refused:\n%s", stdout)
	}
	pol := filepath.Join(dir, "bind.yaml")
	if err := os.WriteFile(pol, []byte("version: 1\nrules:\n  - syscalls: [bind]\n    match: { addr: [\"unix:/var/empty/vigil-denied/*\"] }\n    action: deny\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(work, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	py := "import os, socket\nos.chdir(" + pyQuote(work) + ")\nos.mkdir('d')\n" +
		"for p in ['a.sock', 'd/b.sock']:\n" +
		"    s = socket.socket(socket.AF_UNIX)\n" +
		"    try:\n        s.bind(p); print(p, 'bound', s.getsockname() == p)\n" +
		"    except OSError as e:\n        print(p, 'errno', e.errno)\n"
	out, stderr, code := asNobody("run", "--policy", pol, "--log", filepath.Join(work, "log"), "--", "/usr/bin/python3", "-c", py)
	if code != 0 || out != "a.sock bound True\nd/b.sock errno 1\n" {
		t.Errorf("binds as nobody: exit %d, stderr %q, stdout %q", code, stderr, out)
	}
}

// pyQuote quotes s as a Python string literal (ASCII paths).
func pyQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "\\'") + "'" }
