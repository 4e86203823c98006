package agent

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/vigilsec/vigil/enforcer/audit"
)

// dockerScript exercises one call Docker's default profile denies and the
// kernel allows here (a user namespace needs no capability; the profile
// allows unshare only with CAP_SYS_ADMIN), and one file the web policy
// denies.
const dockerScript = `cat /etc/ok
unshare -U true; echo "unshare=$?"
cat /etc/secret; echo "secret=$?"
`

// TestDockerDefaultMergedWithAPolicyDeniesWhatBothDeny runs one container
// (runc, then crun) three ways: without seccomp (the platform's own answers), under
// Docker's default profile resolved for the bundle as Docker resolves it,
// and under that profile merged with web.yaml (seccomp-profile --base
// --config), supervised by the agent with the eBPF binding. The merged
// container is denied both what Docker's profile denies and what the
// policy denies, and still runs what both allow.
func TestDockerDefaultMergedWithAPolicyDeniesWhatBothDeny(t *testing.T) {
	for _, name := range []string{"runc", "crun"} {
		t.Run(name, func(t *testing.T) { testDockerDefaultMerged(t, requireRuntime(t, name)) })
	}
}

func testDockerDefaultMerged(t *testing.T, rt *ociRuntime) {
	ta := startAgent(t, DefaultHandoffTimeout)
	webPolicyFile(t, ta.Dir)
	b := newBundle(t, rt, ta.Addr(), dockerScript)
	cfgPath := filepath.Join(b.dir, "config.json")
	// newBundle put vigil's own profile in; start from runc spec's config
	// without seccomp, as the README does.
	plain := withoutSeccomp(t, cfgPath)
	docker := dockerDefault(t)

	// 1. No seccomp: the kernel lets the user namespace be made.
	writeConfig(t, cfgPath, plain)
	stdout, stderr, err := b.run(t, nextID("plain"), "")
	if err != nil || !strings.Contains(stdout, "unshare=0\n") || !strings.Contains(stdout, "the secret") {
		t.Fatalf("without seccomp: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}

	// 2. Docker's default profile alone.
	cfg, err := ParseConfig(plain)
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := ResolveProfile(docker, &cfg.Spec)
	if err != nil {
		t.Fatal(err)
	}
	oci, err := ToOCI(resolved)
	if err != nil {
		t.Fatal(err)
	}
	dockerOnly, err := cfg.WithSeccomp(oci)
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, cfgPath, dockerOnly)
	stdout, stderr, err = b.run(t, nextID("docker"), "")
	if err != nil || !strings.Contains(stdout, "unshare=1\n") || !strings.Contains(stderr, "Operation not permitted") || !strings.Contains(stdout, "the secret") {
		t.Fatalf("Docker's profile: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}

	// 3. Merged, as `vigil agent seccomp-profile --base docker-default.json
	// --config config.json --policy web.yaml --runtime NAME` does it.
	flags, err := RuntimeFlags(rt.name)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := MergeFiles(io.Discard, MergeRequest{
		PolicyName: "web.yaml", Policy: loadWebPolicy(t),
		Options: ProfileOptions{Socket: ta.Addr(), Metadata: "policy=web.yaml", Flags: flags},
		Base:    Input{Name: "docker-default.json", Data: docker}, Config: Input{Name: "config.json", Data: plain},
	})
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, cfgPath, merged)
	id := nextID("merged")
	stdout, stderr, err = b.run(t, id, "")
	if err != nil {
		t.Fatalf("merged: %v\nstdout:\n%s\nstderr:\n%s\nagent:\n%s", err, stdout, stderr, ta.Log)
	}
	for _, want := range []string{"ok\n", "unshare=1\n", "secret=1\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("merged: stdout lacks %q:\n%s\nstderr:\n%s", want, stdout, stderr)
		}
	}
	if strings.Contains(stdout, "the secret") {
		t.Errorf("merged: the container read the file the policy denies:\n%s", stdout)
	}
	for _, want := range []string{"unshare: unshare(0x10000000): Operation not permitted", "can't open '/etc/secret': Permission denied"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("merged: stderr lacks %q:\n%s", want, stderr)
		}
	}
	// The policy's denial came from the agent, and its grants were bound.
	ta.Audit.waitRecord(t, auditOf(id, recordWant{Syscall: "openat", Rule: "no-secret", Action: "deny", Arg: "/etc/secret"}))
	if rt.name == "runc" {
		// (Under crun a process forked before the agent's Watch may make
		// this open: its record then says unconfirmed; see the README.)
		ta.Audit.waitRecord(t, auditOf(id, recordWant{Syscall: "openat", Action: "allow", Arg: "/etc/ok", Verified: audit.VerifiedKernel}))
	}
	// Docker's denial never reached the agent: the kernel answered it.
	if n := ta.Audit.countRecords(t, auditOf(id, recordWant{Syscall: "unshare"})); n != 0 {
		t.Errorf("%d unshare records: the base's denial went to the agent", n)
	}
}

// withoutSeccomp returns the bundle's config.json without linux.seccomp.
func withoutSeccomp(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	spec.Linux.Seccomp = nil
	out, err := json.MarshalIndent(&spec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeConfig(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
