package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// Workload is one micro-workload of testdata/workload.c.
type Workload struct {
	// Name is stable: it is the "workload" field of the results.
	Name string
	// Desc says what one operation is.
	Desc string
	// guess is the first iteration count calibration tries.
	guess int
	// args returns the workload's argv for n iterations.
	args func(e *env, n int) []string
}

// Workloads returns every workload, in report order.
func Workloads() []Workload {
	return []Workload{
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
