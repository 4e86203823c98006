package agent

import (
	"encoding/json"
	"io"
	"os"
	"testing"

	"github.com/vigilsec/vigil/enforcer/policy"
)

// FuzzMergeProfile feeds arbitrary bytes to the profile reader and, when
// they parse, to Merge (alone and resolved for a config), which must answer
// with a profile or an error, never a panic.
func FuzzMergeProfile(f *testing.F) {
	// Docker's default profile, cut down: the fuzzer minimises every new
	// input, and minimising 17 KB takes minutes.
	raw, err := os.ReadFile("testdata/docker-default.json")
	if err != nil {
		f.Fatal(err)
	}
	docker, err := ParseProfile(raw)
	if err != nil {
		f.Fatal(err)
	}
	docker.ArchMap = docker.ArchMap[:1]
	docker.Syscalls = append(docker.Syscalls[:1:1], docker.Syscalls[40:48]...)
	docker.Syscalls[0].Names = []string{"openat", "seccomp", "ptrace", "read", "mknod"}
	small, err := json.Marshal(docker)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(small)
	f.Add([]byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["ptrace"], "action": "SCMP_ACT_KILL", "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}]}]}`))
	f.Add([]byte(`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "seccomp", "action": "SCMP_ACT_ALLOW", "args": [{"index": 3, "value": 1, "op": "SCMP_CMP_GT"}]}, {"names": ["openat"], "action": "SCMP_ACT_LOG", "includes": {"caps": ["CAP_X"]}}]}`))
	f.Add([]byte(`{"defaultAction": "SCMP_ACT_NOTIFY"}`))
	// Podman's errno names.
	f.Add([]byte(`{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrno": "ENOSYS", "defaultErrnoRet": 38, "syscalls": [{"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errno": "EPERM"}, {"names": ["openat"], "action": "SCMP_ACT_ALLOW"}]}`))
	f.Add([]byte(`{"ociVersion": "1.0.2", "process": {"capabilities": {"bounding": []}}, "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}}}`))
	pol, err := policy.Load("testdata/web.yaml")
	if err != nil {
		f.Fatal(err)
	}
	// A policy whose clone rule gets conditional notify rules (flagRules).
	ns, err := policy.Parse("ns.yaml", []byte("version: 1\nrules:\n  - syscalls: [clone]\n    match: { flags: { any: [CLONE_NEWUSER, CLONE_NEWNET] } }\n    action: deny\n"))
	if err != nil {
		f.Fatal(err)
	}
	cfg := []byte(`{"ociVersion": "1.0.2", "process": {"args": ["sh"], "capabilities": {"bounding": ["CAP_KILL"]}}, "linux": {}}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		Sniff(data)
		req := MergeRequest{PolicyName: "web.yaml", Policy: pol, Options: webOpts, Base: Input{Name: "base.json", Data: data}}
		if p, err := ParseProfile(data); err == nil {
			Describe(p)
			if merged, _, err := Merge(p, pol, webOpts); err == nil && merged.ListenerPath != "" && len(merged.Syscalls) == 0 {
				t.Fatal("listener set without rules")
			}
			if p, err := ParseProfile(data); err == nil {
				_, _, _ = Merge(p, ns, webOpts)
			}
			_, _ = MergeFiles(io.Discard, req)
			req.Config = Input{Name: "config.json", Data: cfg}
			_, _ = MergeFiles(io.Discard, req)
		}
		_, _ = MergeFiles(io.Discard, MergeRequest{PolicyName: "web.yaml", Policy: pol, Options: webOpts, Config: Input{Name: "config.json", Data: data}})
	})
}
