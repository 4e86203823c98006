package agent

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/enforcer/policy"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestProfileMatchesGolden(t *testing.T) {
	cases := []struct {
		golden string
		policy string // testdata file; the embedded default would make the golden follow default.yaml's edits
		opts   ProfileOptions
	}{
		{"profile-web.golden.json", "web.yaml", ProfileOptions{Socket: "/run/vigil/agent.sock", Metadata: "policy=web.yaml"}},
		{"profile-web-nohardening.golden.json", "web.yaml", ProfileOptions{Socket: "/run/vigil/agent.sock", Metadata: "policy=web.yaml", NoHardening: true}},
	}
	for _, tc := range cases {
		t.Run(tc.golden, func(t *testing.T) {
			p, err := policy.Load(filepath.Join("testdata", tc.policy))
			if err != nil {
				t.Fatal(err)
			}
			prof, err := Profile(p, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(prof, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", tc.golden)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("profile differs from %s (run with -update after checking):\n%s", path, got)
			}
		})
	}
}

func TestProfileRefusesWhatRuncRefuses(t *testing.T) {
	p, err := policy.Parse("w.yaml", []byte("version: 1\nrules:\n  - syscalls: [write, openat]\n    action: log\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Profile(p, ProfileOptions{Socket: "/s"}); err == nil || !strings.Contains(err.Error(), "write") {
		t.Fatalf("profile trapping write: %v", err)
	}
	if _, err := Profile(policy.Default(), ProfileOptions{}); err == nil {
		t.Fatal("profile without a socket accepted")
	}
}

func TestProfileLeavesHardeningToAPolicyThatTrapsTheSyscall(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte("version: 1\nrules:\n  - syscalls: [ptrace]\n    action: log\n"))
	if err != nil {
		t.Fatal(err)
	}
	prof, err := Profile(p, ProfileOptions{Socket: "/s"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range prof.Syscalls {
		for _, name := range s.Names {
			if name == "ptrace" {
				n++
				if s.Action != "SCMP_ACT_NOTIFY" {
					t.Fatalf("ptrace has action %s", s.Action)
				}
			}
		}
	}
	if n != 1 {
		t.Fatalf("ptrace appears %d times", n)
	}
}

func TestCheckOCIGradesTheRuntimesOwnCalls(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte("version: 1\nrules:\n  - syscalls: [write, futex, openat, mknod]\n    action: log\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Severity{}
	for _, f := range CheckOCI(p) {
		got[f.Syscall] = f.Severity
	}
	want := map[string]Severity{"write": Fatal, "futex": Warning, "openat": Note}
	if len(got) != len(want) {
		t.Fatalf("findings %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("findings %v, want %v", got, want)
		}
	}
	if err := FatalFindings(CheckOCI(p)); err == nil || !strings.Contains(err.Error(), "write") {
		t.Fatalf("FatalFindings = %v", err)
	}
	if err := FatalFindings(CheckOCI(policy.Default())); err != nil {
		t.Fatalf("the default policy is not usable in containers: %v", err)
	}
}
