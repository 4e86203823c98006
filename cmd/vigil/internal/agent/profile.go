package agent

import (
	"fmt"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/filter"
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
	// runtime's default.
	Flags []specs.LinuxSeccompFlag
}

// Profile returns the linux.seccomp section of config.json that matches p:
// everything allowed by default, the policy's syscalls sent to the agent,
// and vigil's hardening rules answered in the kernel, as `vigil run`'s own
// filter does. It refuses policies an OCI runtime cannot load (CheckOCI's
// fatal findings).
func Profile(p *policy.Policy, o ProfileOptions) (*specs.LinuxSeccomp, error) {
	if o.Socket == "" {
		return nil, fmt.Errorf("generating seccomp profile: no listener socket")
	}
	if err := FatalFindings(CheckOCI(p)); err != nil {
		return nil, err
	}
	trapped := p.Syscalls()
	// Sends that connect's address rules govern (enforcer/send.go):
	// sendmsg and sendmmsg whole, sendto only with a destination.
	whole, addrOnly := enforcer.TrappedSends(p)
	trapped = append(trapped, whole...)
	sort.Strings(trapped)
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		// Only the native ABI: libseccomp gives other ABIs (i386 int $0x80,
		// x32) its bad-arch action (kill), as vigil's own filter does,
		// since vigil decodes x86_64 calls only.
		Architectures:    []specs.Arch{specs.ArchX86_64},
		ListenerPath:     o.Socket,
		ListenerMetadata: o.Metadata,
		Flags:            o.Flags,
	}
	if len(trapped) > 0 {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: trapped, Action: specs.ActNotify})
	}
	for _, name := range addrOnly {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{name}, Action: specs.ActNotify,
			Args: []specs.LinuxSeccompArg{{Index: 4, Value: 0, Op: specs.OpNotEqual}}})
	}
	if o.NoHardening {
		return s, nil
	}
	isTrapped := make(map[string]bool, len(trapped))
	for _, sc := range trapped {
		isTrapped[sc] = true
	}
	hard := filter.HardeningRules()
	sort.Slice(hard, func(i, j int) bool { return hard[i].Syscall < hard[j].Syscall })
	for _, h := range hard {
		if isTrapped[h.Syscall] {
			// The policy decides this syscall (as filter.Compile does);
			// two actions for one syscall would make libseccomp refuse.
			continue
		}
		errno := uint(h.Errno)
		rule := specs.LinuxSyscall{Names: []string{h.Syscall}, Action: specs.ActErrno, ErrnoRet: &errno}
		if h.Syscall == "seccomp" {
			// Only SECCOMP_SET_MODE_FILTER with NEW_LISTENER, as in
			// filter.addHardening: containers may still restrict
			// themselves further. Conditions on different arguments are
			// ANDed; MASKED_EQ takes the mask in value, the datum in
			// valueTwo.
			rule.Args = []specs.LinuxSeccompArg{
				{Index: 0, Value: unix.SECCOMP_SET_MODE_FILTER, Op: specs.OpEqualTo},
				{Index: 1, Value: unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, ValueTwo: unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, Op: specs.OpMaskedEqual},
			}
		}
		s.Syscalls = append(s.Syscalls, rule)
	}
	return s, nil
}
