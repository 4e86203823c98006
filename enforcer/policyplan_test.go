package enforcer_test

import (
	"slices"
	"testing"

	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

// TestWhatAPolicyNeeds pins down which syscalls need a binding, which
// policies start the emulator and when the filter may leave FIFOs alone:
// each decides whether a grant is checked, so each must be exact.
func TestWhatAPolicyNeeds(t *testing.T) {
	parse := func(y string) *policy.Policy {
		t.Helper()
		p, err := policy.Parse("t.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	deny := parse("version: 1\nrules:\n  - syscalls: [openat, unlink]\n    match: { path: [\"/etc/**\"] }\n    action: deny\n")
	if got := enforcer.NeedsBinding(deny); !slices.Equal(got, []string{"openat", "unlink"}) {
		t.Errorf("deny rules with default allow: NeedsBinding = %v", got)
	}
	if !enforcer.NeedsEmulator(deny) {
		t.Error("an unlink that a path rule could refuse needs the emulator")
	}
	denyAll := parse("version: 1\ndefault: deny\nrules:\n  - syscalls: [openat]\n    match: { path: [\"/etc/**\"] }\n    action: deny\n")
	if got := enforcer.NeedsBinding(denyAll); len(got) != 0 {
		t.Errorf("a policy that can only deny needs no binding: %v", got)
	}
	passthrough := parse("version: 1\nrules:\n  - syscalls: [openat]\n    action: allow\n")
	if got := enforcer.NeedsBinding(passthrough); len(got) != 0 || enforcer.NeedsEmulator(passthrough) {
		t.Errorf("a rule without match needs nothing: %v", got)
	}
	devs := parse("version: 1\nrules:\n  - syscalls: [mknod, mknodat]\n    match: { dev: [\"c 1:3\"] }\n    action: emulate\n")
	want := []int{mustNr(t, "mknod"), mustNr(t, "mknodat")}
	if got := enforcer.DevicesOnly(devs); !slices.Equal(got, want) {
		t.Errorf("dev-only mknod rules: DevicesOnly = %v, want %v", got, want)
	}
	pathMknod := parse("version: 1\nrules:\n  - syscalls: [mknod]\n    match: { path: [\"/dev/**\"] }\n    action: deny\n")
	if got := enforcer.DevicesOnly(pathMknod); len(got) != 0 {
		t.Errorf("a path rule on mknod must see FIFOs too: %v", got)
	}
	for _, name := range []string{"openat", "execve", "connect", "clone3"} {
		if !enforcer.Bindable(name) {
			t.Errorf("%s should be bindable", name)
		}
	}
	for _, name := range []string{"unlink", "bind"} {
		if enforcer.Bindable(name) {
			t.Errorf("%s has no kernel object to bind", name)
		}
	}
}

func mustNr(t *testing.T, name string) int {
	nr, ok := sysinfo.Number(name)
	if !ok {
		t.Fatalf("no syscall %s", name)
	}
	return nr
}
