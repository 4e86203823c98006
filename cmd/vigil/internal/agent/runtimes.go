package agent

import (
	"fmt"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runtimeFlags is what each runtime accepts in linux.seccomp.flags and
// passes to seccomp(2), read from their sources:
//
//   - runc 1.1.x refuses any flag ("seccomp flags are not yet supported by
//     runc", libcontainer/specconv SetupSeccomp); runc 1.2 to 1.5-rc know
//     only SECCOMP_FILTER_FLAG_TSYNC, _SPEC_ALLOW and _LOG and refuse the
//     others (seccomp.FlagSupported). WAIT_KILLABLE_RECV is on runc's main
//     branch only (commit 0079bee, 2026-03, unreleased, and it needs
//     libseccomp ≥ 2.6). A runc profile therefore carries no flags: runc
//     then installs the filter with SPEC_ALLOW where supported.
//   - crun ≥ 1.6 passes SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV through
//     (src/libcrun/seccomp.c, libcrun_apply_seccomp). A listed set replaces
//     crun's default (SPEC_ALLOW alone), so SPEC_ALLOW is listed too and
//     only the wait changes. With a listener, crun does not retry without
//     flags when the kernel refuses one: the profile needs Linux ≥ 5.19.
//
// WAIT_KILLABLE_RECV makes a trapped call's wait killable only, from the
// moment vigil has received its notification: a non-fatal signal can no
// longer interrupt a call vigil is carrying out, so the kernel does not
// restart it under a new notification id after vigil performed it. (A
// signal that arrives before vigil's receive still interrupts the wait.)
var runtimeFlags = map[string][]specs.LinuxSeccompFlag{
	"runc": nil,
	"crun": {specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv},
}

// DefaultRuntime is the runtime a profile is written for unless told.
const DefaultRuntime = "runc"

// Runtimes lists the runtimes RuntimeFlags knows.
func Runtimes() []string {
	names := make([]string, 0, len(runtimeFlags))
	for n := range runtimeFlags {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// RuntimeFlags returns the linux.seccomp.flags of a profile for runtime:
// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV where the runtime passes it to
// the kernel, and nothing for a runtime that would refuse the profile.
func RuntimeFlags(runtime string) ([]specs.LinuxSeccompFlag, error) {
	f, ok := runtimeFlags[runtime]
	if !ok {
		return nil, fmt.Errorf("unknown runtime %q (want %s)", runtime, strings.Join(Runtimes(), " or "))
	}
	return append([]specs.LinuxSeccompFlag(nil), f...), nil
}
