package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// readmeBlock returns the shell block that follows the marker comment in
// README.md.
func readmeBlock(t *testing.T, marker string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "<!-- test: "+marker)
	if i < 0 {
		t.Fatalf("README.md has no %q marker", marker)
	}
	s = s[i:]
	start := strings.Index(s, "```sh\n")
	if start < 0 {
		t.Fatalf("no sh block after the %q marker", marker)
	}
	s = s[start+len("```sh\n"):]
	end := strings.Index(s, "```")
	if end < 0 {
		t.Fatal("unterminated block")
	}
	return s[:end]
}

// TestREADMEContainerSetup runs the README's container setup as written,
// from `runc spec` to `runc run`, with the policy of the README's example.
// Only host paths change: /etc/vigil becomes a temporary directory, the
// block runs in a private mount namespace with its own tmpfs on /run (so
// /run/vigil/agent.sock and runc's state are the test's alone), and the
// container id is made unique.
func TestREADMEContainerSetup(t *testing.T) {
	testenv.RequirePrivileged(t)
	for _, tool := range []string{"runc", "jq", "unshare", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (scripts/deps.sh installs it): %v", tool, err)
		}
	}
	block := readmeBlock(t, "container-setup")
	for _, want := range []string{"runc spec", ".process.terminal = false", "seccomp-profile", "--config config.json", "runc run web-1"} {
		if !strings.Contains(block, want) {
			t.Fatalf("the README's setup lacks %q:\n%s", want, block)
		}
	}
	dir := t.TempDir()
	web, err := os.ReadFile("internal/agent/testdata/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "web.yaml"), web, 0o644); err != nil {
		t.Fatal(err)
	}
	binDir := filepath.Join(dir, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(vigilBin, filepath.Join(binDir, "vigil")); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("vigil-readme-%d", os.Getpid())
	script := strings.ReplaceAll(block, "/etc/vigil", filepath.Join(dir, "etc-vigil"))
	script = strings.ReplaceAll(script, "web-1", id)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private", "bash", "-c",
		`mount -t tmpfs -o mode=0755 vigil-readme-run /run && exec bash -eu -o pipefail -c "$BLOCK"`)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BLOCK="+script, "PATH="+binDir+":"+os.Getenv("PATH"))
	// The block leaves the agent running in the background, in this
	// process group: end the group afterwards. Output goes to files, so
	// that Wait does not wait for the agent to close a pipe.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	outFile, errFile := filepath.Join(dir, "stdout"), filepath.Join(dir, "stderr")
	var files []*os.File
	for _, name := range []string{outFile, errFile} {
		f, err := os.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	cmd.Stdout, cmd.Stderr = files[0], files[1]
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	defer syscall.Kill(-pgid, syscall.SIGKILL)
	err = cmd.Wait()
	// Stop the agent the block started, as SIGTERM would.
	syscall.Kill(-pgid, syscall.SIGTERM)
	read := func(name string) string {
		b, _ := os.ReadFile(name)
		return string(b)
	}
	// The container's cat is denied: runc run exits with its status 1.
	code := -1
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err == nil {
		code = 0
	}
	out, errs := read(outFile), read(errFile)
	if code != 1 || strings.Contains(out, "the secret") || !strings.Contains(errs, "cat: can't open '/etc/secret': Permission denied") {
		t.Fatalf("README setup: exit %d (want the container's 1)\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	// The agent decided it, for this container, by the policy's rule.
	if !hasAgentRecord(errs, id, "no-secret") {
		t.Fatalf("no audit record of the agent's denial:\n%s", errs)
	}
	// seccomp-profile said what it did, including the terminal setting it
	// found already handled.
	if !strings.Contains(errs, "has no seccomp profile: adding vigil's own") || strings.Contains(errs, "process.terminal is true") {
		t.Fatalf("seccomp-profile's summary:\n%s", errs)
	}
}

// hasAgentRecord reports whether out holds an audit record of container id
// decided by rule.
func hasAgentRecord(out, id, rule string) bool {
	for _, l := range strings.Split(out, "\n") {
		if r, err := audit.ParseRecord([]byte(l)); err == nil && r.Rule == rule && r.Container == id {
			return true
		}
	}
	return false
}
