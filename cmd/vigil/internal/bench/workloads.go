package bench

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Workload is one micro-workload of testdata/workload.c.
type Workload struct {
	// Name is stable: it is the "workload" field of the results.
	Name string
	// Desc says what one operation is.
	Desc string
	// Threads is the number of threads that share the operations out; 1
	// for the single-threaded workloads.
	Threads int
	// guess is the first iteration count calibration tries.
	guess int
	// args returns the workload's argv for n iterations.
	args func(e *env, n int) []string
	// mechanisms, when set, are the only mechanisms this workload runs
	// under unless both are named on the command line.
	mechanisms []string
}

// ThreadCounts are the thread counts of the open-threads-T workloads.
var ThreadCounts = []int{1, 2, 4, 8}

// threadMechanisms are what the open-threads-T workloads run under: the
// machine's own parallelism, vigil's default mode and the C reference.
var threadMechanisms = []string{"bare", "vigil-allow-bound", "refsup"}

// threadsPrefix starts the names of the open-threads-T workloads.
const threadsPrefix = "open-threads-"

// MemoryWorkload is the load under which vigil's memory is measured.
const MemoryWorkload = threadsPrefix + "8"

// threadsWorkload returns open-threads-T.
func threadsWorkload(t int) Workload {
	return Workload{
		Name:    threadsPrefix + strconv.Itoa(t),
		Desc:    fmt.Sprintf("the open operation shared out over %d threads of one process: throughput of trapped opens", t),
		Threads: t, guess: 2000, mechanisms: threadMechanisms,
		args: func(e *env, n int) []string { return e.workload("open-threads", n, strconv.Itoa(t), e.allowed) },
	}
}

// Workloads returns every workload, in report order.
func Workloads() []Workload {
	ws := []Workload{
		{Name: "getpid", Desc: "getpid(2), which no mechanism traps", guess: 20000,
			args: func(e *env, n int) []string { return e.workload("getpid", n) }},
		{Name: "open", Desc: "openat(2) + close(2) of a file every policy allows", guess: 2000,
			args: func(e *env, n int) []string { return e.workload("open", n, e.allowed) }},
		{Name: "write", Desc: "openat(2) for appending + close(2) of a file every policy allows (emulated where vigil emulates)", guess: 2000,
			args: func(e *env, n int) []string { return e.workload("write", n, e.allowed) }},
		{Name: "open-denied", Desc: "openat(2) of a file the policies deny by path (+ close(2) where it opens)", guess: 2000,
			args: func(e *env, n int) []string { return e.workload("open", n, e.denied) }},
		{Name: "exec", Desc: "vfork(2) + execve(2) of /bin/true + wait4(2)", guess: 20,
			args: func(e *env, n int) []string { return e.workload("exec", n, e.truePath) }},
		{Name: "connect", Desc: "socket(2) + connect(2) to a loopback TCP listener + close(2)", guess: 200,
			args: func(e *env, n int) []string {
				return e.workload("connect", n, "127.0.0.1", strconv.Itoa(e.port))
			}},
	}
	for i := range ws {
		ws[i].Threads = 1
	}
	for _, t := range ThreadCounts {
		ws = append(ws, threadsWorkload(t))
	}
	return ws
}

// pairs reports whether w runs under m: by default only the pairs both
// allow; any pair when both were named explicitly, except those a strict
// mechanism cannot measure.
func pairs(w Workload, m Mechanism, named bool) bool {
	if named {
		return !m.strict || slices.Contains(m.workloads, w.Name)
	}
	return (len(w.mechanisms) == 0 || slices.Contains(w.mechanisms, m.Name)) &&
		(len(m.workloads) == 0 || slices.Contains(m.workloads, w.Name))
}

func selectWorkloads(names []string) ([]Workload, error) {
	all := Workloads()
	if len(names) == 0 {
		return all, nil
	}
	var out []Workload
	for _, n := range names {
		found := false
		for _, w := range all {
			if w.Name == n {
				out = append(out, w)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("workload %q: %w (have %s)", n, ErrUnknownName, strings.Join(workloadNames(all), ", "))
		}
	}
	return out, nil
}

func workloadNames(ws []Workload) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Name
	}
	return out
}
