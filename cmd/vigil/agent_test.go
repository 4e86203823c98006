package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/vigilsec/vigil/enforcer/testenv"
)

const containerPolicy = "version: 1\nrules:\n  - name: secret\n    syscalls: [openat, mknodat]\n    match: { path: [\"/etc/secret\"] }\n    action: deny\n"

func TestSeccompProfileMatchesThePolicy(t *testing.T) {
	p := writeFile(t, "web.yaml", containerPolicy)
	stdout, stderr, code := vigil(t, "agent", "seccomp-profile", "--policy", p, "--socket", "/run/x/agent.sock")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var s specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("not a linux.seccomp object: %v\n%s", err, stdout)
	}
	if s.DefaultAction != specs.ActAllow || s.ListenerPath != "/run/x/agent.sock" || s.ListenerMetadata != "policy=web.yaml" {
		t.Fatalf("profile header: %+v", s)
	}
	if len(s.Syscalls) == 0 || s.Syscalls[0].Action != specs.ActNotify || !slices.Equal(s.Syscalls[0].Names, []string{"fsmount", "mknodat", "mount", "move_mount", "open_tree", "openat", "pivot_root", "umount2"}) {
		t.Fatalf("notify rule: %+v", s.Syscalls)
	}
	var errnoRules []string
	for _, r := range s.Syscalls[1:] {
		if r.Action != specs.ActErrno || r.ErrnoRet == nil || *r.ErrnoRet != uint(syscall.EPERM) {
			t.Fatalf("hardening rule %+v", r)
		}
		errnoRules = append(errnoRules, r.Names...)
	}
	if !slices.Contains(errnoRules, "io_uring_setup") || !slices.Contains(errnoRules, "seccomp") {
		t.Fatalf("hardening rules %v", errnoRules)
	}

	stdout, _, code = vigil(t, "agent", "seccomp-profile", "--policy", p, "--metadata", "", "--no-hardening")
	if code != 0 || !strings.Contains(stdout, `"listenerPath": "/run/vigil/agent.sock"`) || strings.Contains(stdout, "listenerMetadata") || strings.Contains(stdout, "SCMP_ACT_ERRNO") {
		t.Fatalf("exit %d, profile:\n%s", code, stdout)
	}
	_, stderr, code = vigil(t, "agent", "seccomp-profile", "--policy", p, "--metadata", "policy=../x")
	if code != 2 || !strings.Contains(stderr, "not a path") {
		t.Fatalf("bad metadata: exit %d %s", code, stderr)
	}
}

func TestPolicyCheckOCIRefusesWhatTheRuntimeNeeds(t *testing.T) {
	write := writeFile(t, "w.yaml", "version: 1\nrules:\n  - syscalls: [write, futex]\n    action: log\n")
	if _, stderr, code := vigil(t, "policy", "check", write); code != 0 {
		t.Fatalf("without --oci: exit %d %s", code, stderr)
	}
	_, stderr, code := vigil(t, "policy", "check", "--oci", write)
	if code != 2 || !strings.Contains(stderr, "runc refuses SCMP_ACT_NOTIFY on write") || !strings.Contains(stderr, "warning: futex") {
		t.Fatalf("--oci: exit %d %s", code, stderr)
	}
	if _, _, code := vigil(t, "agent", "seccomp-profile", "--policy", write); code != 2 {
		t.Fatalf("seccomp-profile of a policy trapping write: exit %d", code)
	}
	ok := writeFile(t, "ok.yaml", containerPolicy)
	stdout, stderr, code := vigil(t, "policy", "check", "--oci", ok)
	if code != 0 || !strings.Contains(stdout, "ok") || !strings.Contains(stderr, "note: openat") {
		t.Fatalf("--oci on a container policy: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func TestAgentSurvivesSIGHUPAndDrainsOnSIGTERM(t *testing.T) {
	testenv.RequirePrivileged(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	cmd := exec.Command(vigilBin, "agent", "--socket", sock, "--policy-dir", dir)
	// The agent writes while the test polls: a locked buffer.
	var stderr testenv.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st, err := os.Stat(sock); err == nil && st.Mode()&os.ModeSocket != 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no socket:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Before this agent handled SIGHUP, it died of it and left its socket.
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(stderr.String(), "reloaded") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no reload after SIGHUP:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("agent exit: %v\n%s", err, stderr.String())
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
	if !strings.Contains(stderr.String(), "agent stopping") {
		t.Fatalf("stderr:\n%s", stderr.String())
	}
}

func TestAgentRefusesASocketInAMissingDirectory(t *testing.T) {
	testenv.RequirePrivileged(t)
	missing := filepath.Join(t.TempDir(), "nonexistent")
	_, stderr, code := vigil(t, "agent", "--socket", filepath.Join(missing, "x", "y.sock"))
	if code != 2 || !strings.Contains(stderr, "does not exist") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("vigil agent created %s: %v", missing, err)
	}
}

func TestSeccompProfileFlagsFollowTheRuntime(t *testing.T) {
	p := writeFile(t, "web.yaml", containerPolicy)
	for runtime, want := range map[string][]specs.LinuxSeccompFlag{
		"":     nil, // runc, the default: no released runc accepts WAIT_KILLABLE_RECV
		"runc": nil,
		"crun": {specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv},
	} {
		args := []string{"agent", "seccomp-profile", "--policy", p}
		if runtime != "" {
			args = append(args, "--runtime", runtime)
		}
		stdout, stderr, code := vigil(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		var s specs.LinuxSeccomp
		if err := json.Unmarshal([]byte(stdout), &s); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.Flags, want) {
			t.Fatalf("%v: flags %v, want %v", args, s.Flags, want)
		}
	}
	if _, stderr, code := vigil(t, "agent", "seccomp-profile", "--runtime", "podman"); code != 2 || !strings.Contains(stderr, "crun or runc") {
		t.Fatalf("unknown runtime: exit %d %s", code, stderr)
	}
}
