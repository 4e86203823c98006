package bench

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// kind says how a mechanism runs a workload.
type kind int

const (
	kindBare kind = iota
	kindFilter
	kindVigil
	kindRefsup
	kindStrace
	// kindBeside runs the workload unwatched while a vigil in its default
	// mode supervises an idle process: the host-wide cost of vigil's eBPF.
	kindBeside
	// kindSettled runs the workload watched by a vigil in its default
	// mode, from the moment vigil has detached its syscall tracepoints:
	// the steady state of a watched process while no binding is pending.
	kindSettled
)

// notInBuild is the reason given for mechanisms this vigil does not have.
const notInBuild = "not available in this build"

// Mechanism is one way of running a workload.
type Mechanism struct {
	// Name is stable: it is the "mechanism" field of the results.
	Name string
	// Desc says what the mechanism is.
	Desc string
	// Unavailable, when set, says why no build of this vigil can measure
	// it. Adding a mechanism later means filling in kind and its
	// arguments instead.
	Unavailable string
	kind        kind
	// sub is the vigil subcommand ("" is run).
	sub string
	// policy is the vigil policy template (testdata/policies/NAME.yaml).
	policy string
	// binding keeps vigil's eBPF binding: without it the vigil-*
	// mechanisms run with --unverified where vigil has that flag, so they
	// measure seccomp alone.
	binding bool
	// vigilArgs are added after vigil's own arguments, before "--".
	vigilArgs []string
	// refsupArgs go after refsup's --trap arguments. A kindBeside
	// mechanism with refsupArgs runs the workload under refsup instead of
	// alone.
	refsupArgs []string
	// straceArgs go between "strace" and "--".
	straceArgs []string
	// denies lists the workloads whose operations this mechanism refuses;
	// on every other workload each operation must succeed.
	denies []string
	// verify, when set, checks a run's stderr (the file at the path) for
	// what the mechanism promises beyond the workload's outcome.
	verify func(stderrPath string) error
	// workloads, when set, are the only workloads this mechanism runs
	// unless both are named on the command line.
	workloads []string
	// strict: workloads are the only ones this mechanism can measure at
	// all, named or not (Run reports it as not measured when none of them
	// is selected).
	strict bool
	// syscallTracepoints (kindBeside) is whether the vigil beside the
	// workload must hold its sys_enter and sys_exit programs attached
	// while the workload runs: vigil attaches them while a binding is
	// pending and detaches them after --detach-idle without one.
	syscallTracepoints bool
}

// straceSeccompArgs trace exactly the calls vigil's bench policies trap:
// with --seccomp-bpf and no -e trace=, strace would stop at every call.
var straceSeccompArgs = []string{"-f", "--seccomp-bpf", "-e", "trace=openat,execve,connect", "-o", "/dev/null"}

// trappedWorkloads are the workloads whose operation vigil's policies trap.
var trappedWorkloads = []string{"open", "write", "open-denied", "exec", "connect"}

// refsupTraps are refsup's --trap arguments: the calls vigil's bench
// policies trap (and open, which the C reference has always trapped), so
// that every workload's ratio to the reference compares the same trapped
// calls.
var refsupTraps = []string{"--trap", "open", "--trap", "openat", "--trap", "execve", "--trap", "connect"}

// besidePolicy is the policy of the vigil that runs beside the unwatched
// workload: vigil-allow-bound's, which loads vigil's eBPF.
const besidePolicy = "allow-unverified"

// Mechanisms returns every mechanism, in report order, including those this
// build cannot measure.
func Mechanisms() []Mechanism {
	return []Mechanism{
		{Name: "bare", Desc: "the workload alone", kind: kindBare},
		{Name: "filter-only", Desc: "vigil's seccomp filter (hardening rules) with nothing sent to a listener: the cBPF cost", kind: kindFilter},
		{Name: "vigil-deny", Desc: "vigil run, path/address rules deny every trapped workload call", kind: kindVigil,
			policy: "deny", denies: trappedWorkloads},
		{Name: "vigil-allow-unverified", Desc: "vigil run, path/address rules allow (CONTINUE after resolving, no eBPF binding); the denied file is refused", kind: kindVigil,
			policy: "allow-unverified", denies: []string{"open-denied"}},
		{Name: "vigil-passthrough", Desc: "vigil run, rules without a match allow (CONTINUE, nothing to vet)", kind: kindVigil,
			policy: "passthrough"},
		{Name: "vigil-allow-bound", Desc: "vigil run in its default mode: content-dependent reads and execs bound by eBPF, writes and connects emulated", kind: kindVigil,
			policy: "allow-unverified", binding: true, denies: []string{"open-denied"}},
		{Name: "vigil-allow-bound-settled", Desc: "vigil-allow-bound with the workload started once vigil has detached its syscall tracepoints (nothing bound for --detach-idle): what a watched process's untrapped calls cost while no binding is pending; a bound call would attach them again (it is an error here)", kind: kindSettled,
			policy: "allow-unverified", binding: true, workloads: []string{"getpid"}, strict: true},
		{Name: "vigil-observe", Desc: "vigil observe -o /dev/null: eBPF only, no seccomp, one JSON record per call of the default syscalls, none lost", kind: kindVigil,
			sub: "observe", vigilArgs: []string{"-o", os.DevNull}, verify: observeLostNothing},
		{Name: "refsup", Desc: "the C reference supervisor (scripts/refsup.c): traps open, openat, execve and connect, reads the path or address, CONTINUE; --deny by spelling", kind: kindRefsup,
			denies: []string{"open-denied"}},
		{Name: "refsup-resolve", Desc: "refsup --resolve: refsup that also names the object each trapped path leads to as vigil's bound decision does (openat2 refusing symlinks, statx, close), and then continues: the floor of a supervisor whose path decisions name objects", kind: kindRefsup,
			refsupArgs: []string{"--resolve"}, workloads: []string{"open"}},
		{Name: "refsup-emulate", Desc: "refsup --emulate: refsup that performs each trapped open itself (its own open with the call's flags and mode) and installs the file in the watchee with SECCOMP_IOCTL_NOTIF_ADDFD and SECCOMP_ADDFD_FLAG_SEND: the floor of a supervisor that emulates side-effecting opens, as vigil's default mode does opens for writing", kind: kindRefsup,
			refsupArgs: []string{"--emulate"}, workloads: []string{"write"}},
		{Name: "refsup-resolve-emulate", Desc: "refsup --resolve --emulate: refsup that names the object of each trapped open (as refsup-resolve), keeps it, and performs the open on exactly that object (a reopen through /proc/self/fd) before installing it with ADDFD: the floor of a supervisor that vets the object an emulated open acts on, which vigil's default mode does for every open for writing", kind: kindRefsup,
			refsupArgs: []string{"--resolve", "--emulate"}, workloads: []string{"write"}},
		{Name: "strace", Desc: "strace -f -o /dev/null (ptrace stop at every syscall)", kind: kindStrace,
			straceArgs: []string{"-f", "-o", "/dev/null"}},
		{Name: "strace-seccomp-bpf", Desc: "strace -f --seccomp-bpf -e trace=openat,execve,connect -o /dev/null (stops only at the traced calls)", kind: kindStrace,
			straceArgs: straceSeccompArgs},
		{Name: "bare-beside-vigil", Desc: "the workload alone, not watched, while a vigil run in its default mode supervises an idle process (eBPF loaded; its syscall tracepoints detached, as vigil leaves them with no binding pending): the tax of vigil on the rest of the host while it is idle", kind: kindBeside,
			policy: besidePolicy, binding: true, workloads: []string{"getpid"}},
		{Name: "bare-beside-vigil-attached", Desc: "the same, with vigil's syscall tracepoints kept attached (--detach-idle 0): the tax on the rest of the host while vigil's watchees make bound calls", kind: kindBeside,
			policy: besidePolicy, binding: true, workloads: []string{"getpid"}, vigilArgs: []string{"--detach-idle", "0"}, syscallTracepoints: true},
		{Name: "refsup-resolve-beside-vigil-attached", Desc: "refsup-resolve while a vigil in its default mode beside it holds its syscall tracepoints attached (--detach-idle 0): every syscall of the watchee and of the supervisor takes the kernel's slow path, as under a binding supervisor; the floor of naming objects and binding them with raw syscall tracepoints, less the programs' own work", kind: kindBeside,
			policy: besidePolicy, binding: true, workloads: []string{"open"}, vigilArgs: []string{"--detach-idle", "0"}, syscallTracepoints: true, refsupArgs: []string{"--resolve"}},
	}
}

// denied reports whether m refuses w's operation.
func (m Mechanism) denied(w Workload) bool { return slices.Contains(m.denies, w.Name) }

func selectMechanisms(names []string) ([]Mechanism, error) {
	all := Mechanisms()
	if len(names) == 0 {
		return all, nil
	}
	var out []Mechanism
	for _, n := range names {
		i := slices.IndexFunc(all, func(m Mechanism) bool { return m.Name == n })
		if i < 0 {
			names := make([]string, len(all))
			for j, m := range all {
				names[j] = m.Name
			}
			return nil, fmt.Errorf("mechanism %q: %w (have %s)", n, ErrUnknownName, strings.Join(names, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}
