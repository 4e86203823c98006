package agent

import (
	"fmt"

	mseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/vigilsec/vigil/enforcer/policy"
)

// ProfileOptions says how Profile fills the listener fields.
type ProfileOptions struct {
	// Socket is listenerPath: the agent's socket.
	Socket string
	// Metadata is listenerMetadata, e.g. "policy=web.yaml".
	Metadata string
	// NoHardening leaves out vigil's in-kernel hardening rules.
	NoHardening bool
	// Flags is linux.seccomp.flags (RuntimeFlags): nil leaves the
	// runtime's default. Merge adds them to the base's.
	Flags []specs.LinuxSeccompFlag
}

// Profile returns the linux.seccomp section of config.json that matches p:
// everything allowed by default, the policy's syscalls sent to the agent,
// and vigil's hardening rules answered in the kernel, as `vigil run`'s own
// filter does. It refuses policies an OCI runtime cannot load (CheckOCI's
// fatal findings). It is Merge into a base that allows everything.
func Profile(p *policy.Policy, o ProfileOptions) (*specs.LinuxSeccomp, error) {
	base := &mseccomp.Seccomp{LinuxSeccomp: specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		// Only the native ABI: libseccomp gives other ABIs (i386 int $0x80,
		// x32) its bad-arch action (kill), as vigil's own filter does,
		// since vigil decodes x86_64 calls only.
		Architectures: []specs.Arch{specs.ArchX86_64},
	}}
	merged, _, err := Merge(base, p, o)
	if err != nil {
		return nil, err
	}
	return ToOCI(merged)
}

// ToOCI returns p as config.json's linux.seccomp. p must be resolved: no
// archMap, no includes or excludes (ResolveProfile does that).
func ToOCI(p *mseccomp.Seccomp) (*specs.LinuxSeccomp, error) {
	if len(p.ArchMap) > 0 {
		return nil, fmt.Errorf("the profile has an archMap: resolve it for a container first")
	}
	s := p.LinuxSeccomp
	s.Syscalls = nil
	for i, r := range p.Syscalls {
		if !emptyFilter(r.Includes) || !emptyFilter(r.Excludes) {
			return nil, fmt.Errorf("syscalls[%d] has includes or excludes: resolve the profile for a container first", i)
		}
		s.Syscalls = append(s.Syscalls, r.LinuxSyscall)
	}
	return &s, nil
}

// FromOCI wraps config.json's linux.seccomp as a profile Merge takes.
func FromOCI(s *specs.LinuxSeccomp) *mseccomp.Seccomp {
	out := &mseccomp.Seccomp{LinuxSeccomp: *s}
	out.LinuxSeccomp.Syscalls = nil
	for _, r := range s.Syscalls {
		out.Syscalls = append(out.Syscalls, &mseccomp.Syscall{LinuxSyscall: r})
	}
	return out
}
