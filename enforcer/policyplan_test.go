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
	deny := mustPlan(t, parse("version: 1\nrules:\n  - syscalls: [openat, unlink]\n    match: { path: [\"/etc/**\"] }\n    action: deny\n"))
	if got := carried(deny); !slices.Equal(got, []string{"openat", "unlink"}) {
		t.Errorf("deny rules with default allow: allows to carry out = %v", got)
	}
	if !deny.Emulator || !deny.Kernel {
		t.Errorf("an open and an unlink that a path rule could refuse need the binding and the emulator: %+v", deny)
	}
	denyAll := mustPlan(t, parse("version: 1\ndefault: deny\nrules:\n  - syscalls: [openat]\n    match: { path: [\"/etc/**\"] }\n    action: deny\n"))
	if got := carried(denyAll); len(got) != 0 || denyAll.Kernel {
		t.Errorf("a policy that can only deny needs no binding: %v", got)
	}
	passthrough := mustPlan(t, parse("version: 1\nrules:\n  - syscalls: [openat]\n    action: allow\n"))
	if got := carried(passthrough); len(got) != 0 || passthrough.Emulator || passthrough.Kernel {
		t.Errorf("a rule without match needs nothing: %v", got)
	}
	devs := mustPlan(t, parse("version: 1\nrules:\n  - syscalls: [mknod, mknodat]\n    match: { dev: [\"c 1:3\"] }\n    action: emulate\n"))
	want := []int{mustNr(t, "mknod"), mustNr(t, "mknodat")}
	if got := devs.DevicesOnly; !slices.Equal(got, want) {
		t.Errorf("dev-only mknod rules: DevicesOnly = %v, want %v", got, want)
	}
	pathMknod := mustPlan(t, parse("version: 1\nrules:\n  - syscalls: [mknod]\n    match: { path: [\"/dev/**\"] }\n    action: deny\n"))
	if got := pathMknod.DevicesOnly; len(got) != 0 {
		t.Errorf("a path rule on mknod must see FIFOs too: %v", got)
	}
	for _, name := range []string{"openat", "execve", "connect", "clone3"} {
		if c := enforcer.CarryOf(name); c != enforcer.CarryBind && c != enforcer.CarryBindOrEmulate {
			t.Errorf("%s should be bindable, is carried out by %v", name, c)
		}
	}
	for _, name := range []string{"unlink", "bind"} {
		if c := enforcer.CarryOf(name); c == enforcer.CarryBind || c == enforcer.CarryBindOrEmulate {
			t.Errorf("%s has no kernel object to bind, yet is carried out by %v", name, c)
		}
	}
	naive, err := enforcer.NewPlan(deny.Policy, true)
	if err != nil {
		t.Fatal(err)
	}
	if naive.Kernel || naive.Emulator {
		t.Errorf("the naive mode needs neither the binding nor the emulator without emulate rules: %+v", naive)
	}
}

func mustPlan(t *testing.T, p *policy.Policy) *enforcer.Plan {
	t.Helper()
	pl, err := enforcer.NewPlan(p, false)
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

// carried lists the calls whose content-dependent allows need carrying out.
func carried(pl *enforcer.Plan) []string {
	var out []string
	for _, c := range pl.Calls {
		if c.Carry != enforcer.CarryNone {
			out = append(out, c.Name)
		}
	}
	return out
}

func mustNr(t *testing.T, name string) int {
	nr, ok := sysinfo.Number(name)
	if !ok {
		t.Fatalf("no syscall %s", name)
	}
	return nr
}

// TestConnectRulesGovernSends pins down which sends a policy traps, and
// how: connect's address rules govern sendmsg and sendmmsg whole and sendto
// with a destination, unless the policy names them itself.
func TestConnectRulesGovernSends(t *testing.T) {
	parse := func(y string) *policy.Policy {
		t.Helper()
		p, err := policy.Parse("t.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	sendto, sendmsg, sendmmsg := mustNr(t, "sendto"), mustNr(t, "sendmsg"), mustNr(t, "sendmmsg")
	for _, tc := range []struct {
		name      string
		yaml      string
		whole     []int
		addrOnly  []int
		emulator  bool
		wholeName []string
	}{
		{"address rule on connect", "version: 1\nrules:\n  - syscalls: [connect]\n    match: { addr: [\"10.0.0.0/8\"] }\n    action: deny\n",
			[]int{mustNr(t, "connect"), sendmsg, sendmmsg}, []int{sendto}, true, []string{"sendmsg", "sendmmsg"}},
		{"connect without match", "version: 1\nrules:\n  - syscalls: [connect]\n    action: log\n",
			[]int{mustNr(t, "connect")}, nil, false, nil},
		{"the policy names sendmsg", "version: 1\nrules:\n  - syscalls: [connect]\n    match: { addr: [\"10.0.0.0/8\"] }\n    action: deny\n  - syscalls: [sendmsg]\n    action: log\n",
			[]int{mustNr(t, "connect"), sendmsg, sendmmsg}, []int{sendto}, true, []string{"sendmmsg"}},
		{"only a send rule", "version: 1\nrules:\n  - syscalls: [sendto]\n    match: { addr: [\"10.0.0.0/8\"] }\n    action: deny\n",
			[]int{sendto}, nil, true, nil},
		{"deny-only connect rules still govern", "version: 1\ndefault: deny\nrules:\n  - syscalls: [connect]\n    match: { addr: [\"10.0.0.0/8\"] }\n    action: deny\n",
			[]int{mustNr(t, "connect"), sendmsg, sendmmsg}, []int{sendto}, true, []string{"sendmsg", "sendmmsg"}},
	} {
		p := mustPlan(t, parse(tc.yaml))
		got := slices.Clone(p.Notify)
		want := slices.Clone(tc.whole)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: Numbers = %v, want %v", tc.name, got, want)
		}
		if a := p.AddrOnly; !slices.Equal(a, tc.addrOnly) {
			t.Errorf("%s: AddrOnly = %v, want %v", tc.name, a, tc.addrOnly)
		}
		wantNames := slices.Clone(tc.wholeName)
		slices.Sort(wantNames)
		if w, _ := p.GovernedSends(); !slices.Equal(w, wantNames) {
			t.Errorf("%s: GovernedSends = %v, want %v", tc.name, w, wantNames)
		}
		if p.Emulator != tc.emulator {
			t.Errorf("%s: Emulator = %v", tc.name, !tc.emulator)
		}
	}
}
