package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const dockerDefault = "internal/agent/testdata/docker-default.json"

func TestSeccompProfileMergesIntoDockersDefault(t *testing.T) {
	p := writeFile(t, "web.yaml", containerPolicy)
	stdout, stderr, code := vigil(t, "agent", "seccomp-profile", "--base", dockerDefault, "--policy", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var out mseccomp.Seccomp
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("not a profile: %v\n%s", err, stdout)
	}
	// Docker's format is kept (archMap, includes), with the listener added.
	if out.DefaultAction != specs.ActErrno || len(out.ArchMap) == 0 || out.ListenerPath != defaultAgentSocket || out.ListenerMetadata != "policy=web.yaml" {
		t.Fatalf("header: %+v archMap %d", out.LinuxSeccomp, len(out.ArchMap))
	}
	includes := 0
	for _, r := range out.Syscalls {
		if r.Includes != nil {
			includes++
		}
	}
	if includes == 0 {
		t.Fatal("the includes of Docker's rules were dropped")
	}
	for _, want := range []string{"vigil: merged " + p + " into " + dockerDefault, "notify   mknodat, openat: syscalls[0] (SCMP_ACT_ALLOW) is now SCMP_ACT_NOTIFY",
		"harden   ptrace: removed from the allowing rules syscalls[1], syscalls[52]", "listener listenerPath /run/vigil/agent.sock"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}

	// Resolved for containerd: plain OCI, no includes, this machine's arches.
	stdout, stderr, code = vigil(t, "agent", "seccomp-profile", "--base", dockerDefault, "--policy", p, "--resolve-caps", "CAP_KILL,CAP_SYS_ADMIN")
	if code != 0 {
		t.Fatalf("--resolve-caps: exit %d: %s", code, stderr)
	}
	if strings.Contains(stdout, "includes") || strings.Contains(stdout, "archMap") || !strings.Contains(stdout, `"SCMP_ARCH_X86_64"`) || !strings.Contains(stderr, "resolved for CAP_KILL,CAP_SYS_ADMIN") {
		t.Fatalf("--resolve-caps output:\n%s\n%s", stdout, stderr)
	}
	var oci specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(stdout), &oci); err != nil {
		t.Fatal(err)
	}
	admin := false
	for _, r := range oci.Syscalls {
		admin = admin || r.Action == specs.ActAllow && slicesContains(r.Names, "unshare")
	}
	if !admin {
		t.Fatal("CAP_SYS_ADMIN's rules were not resolved in")
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestSeccompProfileRefusesWhatItCannotMerge(t *testing.T) {
	p := writeFile(t, "web.yaml", containerPolicy)
	weak := writeFile(t, "weak.json", `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["openat"], "action": "SCMP_ACT_KILL", "args": [{"index": 2, "value": 64, "valueTwo": 64, "op": "SCMP_CMP_MASKED_EQ"}]}]}`)
	cfg := writeFile(t, "config.json", `{"ociVersion": "1.0.2", "process": {"terminal": true, "args": ["sh"]}, "linux": {}}`)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--base", weak}, "openat: the base restricts it only for some calls"},
		{[]string{"--base", cfg}, "is an OCI config.json, not a seccomp profile: pass it with --config"},
		{[]string{"--base", p}, "is not a seccomp profile"},
		{[]string{"--resolve-caps", "CAP_KILL"}, "--resolve-caps needs --base"},
		{[]string{"--base", dockerDefault, "--config", cfg, "--resolve-caps", ""}, "needs a base profile and no config.json"},
	} {
		stdout, stderr, code := vigil(t, append([]string{"agent", "seccomp-profile", "--policy", p}, tc.args...)...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
}

func TestSeccompProfileMergesIntoAConfig(t *testing.T) {
	p := writeFile(t, "web.yaml", containerPolicy)
	// runc spec's shape: no seccomp, terminal true, fields vigil must keep.
	cfg := writeFile(t, "config.json", `{"ociVersion": "1.0.2-dev", "hostname": "runc", "process": {"terminal": true, "args": ["sh"], "cwd": "/",
 "capabilities": {"bounding": ["CAP_KILL"]}}, "root": {"path": "rootfs"}, "linux": {"namespaces": [{"type": "pid"}], "maskedPaths": ["/proc/kcore"]}}`)
	stdout, stderr, code := vigil(t, "agent", "seccomp-profile", "--policy", p, "--config", cfg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var spec specs.Spec
	if err := json.Unmarshal([]byte(stdout), &spec); err != nil {
		t.Fatal(err)
	}
	if spec.Hostname != "runc" || len(spec.Linux.MaskedPaths) != 1 || len(spec.Linux.Namespaces) != 1 || spec.Linux.Seccomp == nil ||
		spec.Linux.Seccomp.DefaultAction != specs.ActAllow || spec.Linux.Seccomp.ListenerPath != defaultAgentSocket {
		t.Fatalf("config:\n%s", stdout)
	}
	if !strings.Contains(stderr, "has no seccomp profile: adding vigil's own") || !strings.Contains(stderr, "process.terminal is true") {
		t.Fatalf("stderr:\n%s", stderr)
	}

	// Into Docker's default resolved for the config, then the result's own
	// seccomp is refused as a base (it already names the agent).
	merged := filepath.Join(t.TempDir(), "config.json")
	stdout, stderr, code = vigil(t, "agent", "seccomp-profile", "--policy", p, "--config", cfg, "--base", dockerDefault)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if err := os.WriteFile(merged, []byte(stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "resolved for "+cfg) || strings.Contains(stdout, "includes") {
		t.Fatalf("stderr:\n%s\nstdout:\n%s", stderr, stdout)
	}
	_, stderr, code = vigil(t, "agent", "seccomp-profile", "--policy", p, "--config", merged)
	if code != 2 || !strings.Contains(stderr, "already names a seccomp agent") {
		t.Fatalf("merging twice: exit %d: %s", code, stderr)
	}
	_, stderr, code = vigil(t, "agent", "seccomp-profile", "--policy", p, "--config", merged, "--base", dockerDefault)
	if code != 2 || !strings.Contains(stderr, "already has a linux.seccomp profile") {
		t.Fatalf("--base into a config with seccomp: exit %d: %s", code, stderr)
	}
}

func TestPolicyCheckRecognisesSeccompProfilesAndConfigs(t *testing.T) {
	_, stderr, code := vigil(t, "policy", "check", dockerDefault)
	if code != 2 || !strings.Contains(stderr, "not a vigil policy but a seccomp profile (defaultAction SCMP_ACT_ERRNO") ||
		!strings.Contains(stderr, "vigil agent seccomp-profile --base "+dockerDefault) || strings.Contains(stderr, "unknown key") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	p := writeFile(t, "web.yaml", containerPolicy)
	merged := writeFile(t, "merged.json", "")
	stdout, _, _ := vigil(t, "agent", "seccomp-profile", "--base", dockerDefault, "--policy", p)
	if err := os.WriteFile(merged, []byte(stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = vigil(t, "policy", "check", merged)
	if code != 2 || !strings.Contains(stderr, "syscalls sent to the agent at /run/vigil/agent.sock") || !strings.Contains(stderr, "--security-opt seccomp="+merged) {
		t.Fatalf("merged profile: exit %d: %s", code, stderr)
	}
	cfg := writeFile(t, "config.json", `{"ociVersion": "1.0.2", "process": {"args": ["sh"]}}`)
	_, stderr, code = vigil(t, "policy", "check", cfg)
	if code != 2 || !strings.Contains(stderr, "not a vigil policy but an OCI runtime config.json") {
		t.Fatalf("config: exit %d: %s", code, stderr)
	}
	_, stderr, code = vigil(t, "run", "--policy", dockerDefault, "--", "true")
	if code != 2 || !strings.Contains(stderr, "not a vigil policy but a seccomp profile") {
		t.Fatalf("run --policy PROFILE: exit %d: %s", code, stderr)
	}
}
