package enforcer_test

import (
	"strings"
	"testing"

	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/filter"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// TestHardeningRefusesWhatWouldSwitchSupervisionOff makes one harmless call
// of every syscall the default hardening refuses (those that let a root
// watchee undo supervision: bpf, module loading, kexec, pidfd_getfd,
// process_vm_writev, userfaultfd, fanotify, raw I/O ports), bare and under
// vigil: the kernel answers bare with its own result, never EPERM; under
// vigil the filter answers EPERM; with --no-hardening the kernel's answer
// comes back.
func TestHardeningRefusesWhatWouldSwitchSupervisionOff(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	f := newFixture(t)
	names := map[string]bool{}
	for _, h := range filter.HardeningRules() {
		names[h.Syscall] = true
	}
	noHardening := func(c *enforcer.RunConfig) { c.NoHardening = true }
	for _, name := range []string{"bpf", "init_module", "finit_module", "delete_module", "kexec_load",
		"kexec_file_load", "pidfd_getfd", "process_vm_writev", "userfaultfd", "fanotify_init", "iopl", "ioperm"} {
		if !names[name] {
			t.Errorf("%s is not among the hardening rules", name)
			continue
		}
		argv := []string{probe, "hardened", name}
		alone, _ := bare(t, argv...)
		alone = strings.TrimSpace(alone)
		if alone == "err EPERM" || alone == "" {
			t.Fatalf("%s bare: %q; the test needs a call the kernel does not refuse with EPERM itself", name, alone)
		}
		if got := strings.TrimSpace(supervise(t, f.pol, argv).stdout); got != "err EPERM" {
			t.Errorf("%s under vigil: %q, want err EPERM (bare: %q)", name, got, alone)
		}
		if got := strings.TrimSpace(supervise(t, f.pol, argv, noHardening).stdout); got != alone {
			t.Errorf("%s under vigil --no-hardening: %q, want the kernel's %q", name, got, alone)
		}
	}
}
