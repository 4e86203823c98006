package enforcer_test

import (
	"strings"
	"testing"

	"github.com/vigilsec/vigil/enforcer/testenv"
)

// fidelityPolicy makes every call of the probe's fidelity run content
// dependent (a path rule that matches none of them), so the path calls are
// emulated and execveat is bound, as under a real policy.
const fidelityPolicy = `version: 1
rules:
  - syscalls: [linkat, renameat2, unlinkat, fchownat, fchmodat2, truncate, mkdirat, mknodat, setxattr, lsetxattr, fsetxattr, removexattr, lremovexattr, fremovexattr, execveat]
    match: { path: ["/nonexistent-vigil-protected/**"] }
    action: deny
`

// TestEmulatedCallsCheckArgumentsInTheKernelsOrder runs junk flags with bad
// pointers and missing paths, flag combinations the kernel refuses, the
// AT_EMPTY_PATH forms and O_TMPFILE links through vigil's emulation and
// compares each result with an unsupervised run: the kernel checks flags
// before it reads or looks up any path (linkat, renameat2, unlinkat,
// fchownat, fchmodat2, truncate's length, setxattr; removexattr reads its
// name before its path), execveat reads its path
// first, and linkat(fd, "", ..., AT_EMPTY_PATH) works for a descriptor the
// caller opened with its current credentials (Linux 6.10+) and fails with
// ENOENT for one it inherited, unless it has CAP_DAC_READ_SEARCH.
func TestEmulatedCallsCheckArgumentsInTheKernelsOrder(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	pol := mustPolicy(t, fidelityPolicy)
	for _, mode := range []string{"", "nocap"} {
		t.Run("caps="+map[string]string{"": "root", "nocap": "no-dac-read-search"}[mode], func(t *testing.T) {
			argv := func(dir string) []string {
				a := []string{probe, "fidelity", dir}
				if mode != "" {
					a = append(a, mode)
				}
				return a
			}
			want, _ := bare(t, argv(t.TempDir())...)
			r := supervise(t, pol, argv(t.TempDir()))
			if countEmulated(r) < 10 {
				t.Errorf("only %d calls were emulated", countEmulated(r))
			}
			wl, gl := lines(want), lines(r.stdout)
			if len(wl) != len(gl) {
				t.Fatalf("under vigil %d lines, alone %d:\nunder vigil:\n%s\nalone:\n%s", len(gl), len(wl), r.stdout, want)
			}
			for i := range wl {
				if wl[i] != gl[i] {
					t.Errorf("%s under vigil, %s alone", gl[i], strings.TrimPrefix(wl[i], strings.Fields(wl[i])[0]+" "))
				}
			}
		})
	}
}
