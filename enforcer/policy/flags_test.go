package policy

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

func TestRegisterFlagsPrescreen(t *testing.T) {
	clone, _ := sysinfo.Number("clone")
	clone3, _ := sysinfo.Number("clone3")
	const head = "version: 1\ndefault: allow\nrules:\n"
	deny := func(flags string) string {
		return "  - syscalls: [clone, clone3]\n    match: { flags: " + flags + " }\n    action: deny\n"
	}
	for _, tc := range []struct {
		name string
		src  string
		nr   int
		mask uint64 // 0: no prescreen
	}{
		{"a namespace denial", head + deny("{ any: [CLONE_NEWUSER, CLONE_NEWNET] }"), clone, unix.CLONE_NEWUSER | unix.CLONE_NEWNET},
		{"all of several", head + deny("{ all: [CLONE_NEWUSER, CLONE_NEWPID] }"), clone, unix.CLONE_NEWUSER | unix.CLONE_NEWPID},
		{"then a rule without match that allows", head + deny("{ any: [CLONE_NEWUSER] }") + "  - syscalls: [clone]\n    action: allow\n", clone, unix.CLONE_NEWUSER},
		// clone3's flags are in memory: the filter cannot see them.
		{"clone3", head + deny("{ any: [CLONE_NEWUSER] }"), clone3, 0},
		// `none` holds for a call without the bits: it decides those.
		{"none", head + deny("{ none: [CLONE_THREAD] }"), clone, 0},
		// Calls without the bits are denied by default: they must be trapped.
		{"default deny", "version: 1\ndefault: deny\nrules:\n" + deny("{ any: [CLONE_NEWUSER] }"), clone, 0},
		// A log rule records every call.
		{"then a rule without match that logs", head + deny("{ any: [CLONE_NEWUSER] }") + "  - syscalls: [clone]\n    action: log\n", clone, 0},
		// CLONE_NEWTIME sits in clone(2)'s exit-signal byte: no bit left.
		{"only the exit signal byte", head + deny("{ any: [CLONE_NEWTIME] }"), clone, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, tc.src)
			mask, ok := p.RegisterFlagsPrescreen(tc.nr)
			if ok != (tc.mask != 0) || mask != tc.mask {
				t.Errorf("RegisterFlagsPrescreen = %#x, %v; want %#x", mask, ok, tc.mask)
			}
		})
	}
}
