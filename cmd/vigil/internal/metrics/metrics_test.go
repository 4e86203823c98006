package metrics

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/vigilsec/vigil/enforcer/policy"
)

func TestDecisionCountsByLabelsAndObservesLatency(t *testing.T) {
	m := New()
	m.Decision("openat", policy.ActionAllow, "default", "kernel", false, 20*time.Microsecond)
	m.Decision("openat", policy.ActionAllow, "default", "kernel", false, 30*time.Microsecond)
	m.Decision("openat", policy.ActionDeny, "no-secret", "", false, 10*time.Microsecond)
	m.Decision("mkdir", policy.ActionAllow, "default", "", true, time.Millisecond)
	want := `
# HELP vigil_decisions_total Decisions on trapped syscalls, one per audit record, by the record's syscall, action, rule, verified and emulated fields.
# TYPE vigil_decisions_total counter
vigil_decisions_total{action="allow",emulated="false",rule="default",syscall="openat",verified="kernel"} 2
vigil_decisions_total{action="allow",emulated="true",rule="default",syscall="mkdir",verified=""} 1
vigil_decisions_total{action="deny",emulated="false",rule="no-secret",syscall="openat",verified=""} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "vigil_decisions_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.latency); n != 2 {
		t.Fatalf("%d latency series, want one per syscall (2)", n)
	}
	m.BindingWritten()
	m.Mismatch("openat")
	m.LostEvents(3)
	m.LostEvents(4)
	m.EmulationFailed("mkdir")
	if v := testutil.ToFloat64(m.lost); v != 7 {
		t.Fatalf("lost events %v, want 7", v)
	}
	if v := testutil.ToFloat64(m.bindings); v != 1 {
		t.Fatalf("bindings %v", v)
	}
	if v := testutil.ToFloat64(m.mismatches.WithLabelValues("openat")); v != 1 {
		t.Fatalf("mismatches %v", v)
	}
	if v := testutil.ToFloat64(m.emulation.WithLabelValues("mkdir")); v != 1 {
		t.Fatalf("emulation errors %v", v)
	}
}

// The notify loop calls Decision for every trapped syscall: once a kind of
// decision has been seen, counting it must not allocate.
func TestDecisionDoesNotAllocate(t *testing.T) {
	m := New()
	m.Decision("openat", policy.ActionAllow, "default", "kernel", false, time.Microsecond)
	allocs := testing.AllocsPerRun(1000, func() {
		m.Decision("openat", policy.ActionAllow, "default", "kernel", false, time.Microsecond)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per decision", allocs)
	}
}

func TestAgentMetricsOnlyInAgentMode(t *testing.T) {
	m := New()
	m.ContainerSupervised() // before RegisterAgent: ignored, no panic
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "vigil_agent_") {
			t.Fatalf("%s registered outside agent mode", f.GetName())
		}
	}
	n := 0
	m.RegisterAgent(func() int { return n })
	n = 2
	m.ContainerSupervised()
	m.ContainerSupervised()
	m.ContainerSupervised()
	m.HandoffRefused()
	want := `
# HELP vigil_agent_containers Containers the agent supervises now.
# TYPE vigil_agent_containers gauge
vigil_agent_containers 2
# HELP vigil_agent_containers_supervised_total Containers whose listener the agent took over and supervised, since the agent started.
# TYPE vigil_agent_containers_supervised_total counter
vigil_agent_containers_supervised_total 3
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "vigil_agent_containers", "vigil_agent_containers_supervised_total"); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(m.refused); v != 1 {
		t.Fatalf("refused %v", v)
	}
}

// TestSyscallTracepointsReadTheirStateAtEachScrape: the gauge and the
// counter follow the loader's state, and a second registration (a second
// Kernel) changes nothing rather than panicking.
func TestSyscallTracepointsReadTheirStateAtEachScrape(t *testing.T) {
	m := New()
	attached, attaches := true, uint64(1)
	m.SyscallTracepoints(func() (bool, uint64) { return attached, attaches })
	m.SyscallTracepoints(func() (bool, uint64) { return false, 99 })
	check := func(gauge, total int) {
		t.Helper()
		want := fmt.Sprintf(`
# HELP vigil_syscall_tracepoints_attached 1 while vigil's sys_enter and sys_exit eBPF programs are attached (every syscall of the host takes the kernel's slow path then), else 0.
# TYPE vigil_syscall_tracepoints_attached gauge
vigil_syscall_tracepoints_attached %d
# HELP vigil_syscall_tracepoints_attaches_total Times the syscall tracepoints were attached on demand (a binding or the emulator needed them after an idle --detach-idle); 0 when they stay attached.
# TYPE vigil_syscall_tracepoints_attaches_total counter
vigil_syscall_tracepoints_attaches_total %d
`, gauge, total)
		if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "vigil_syscall_tracepoints_attached", "vigil_syscall_tracepoints_attaches_total"); err != nil {
			t.Fatal(err)
		}
	}
	check(1, 1)
	attached, attaches = false, 3
	check(0, 3)
}

func TestServeExposesTheRegistry(t *testing.T) {
	m := New()
	m.Decision("connect", policy.ActionDeny, "no-metadata", "", false, time.Microsecond)
	s, err := m.Serve("127.0.0.1:0", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := http.Get("http://" + s.Addr() + Path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`vigil_decisions_total{action="deny",emulated="false",rule="no-metadata",syscall="connect",verified=""} 1`, "vigil_build_info{", "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %s:\n%s", want, body)
		}
	}
	if resp, err := http.Get("http://" + s.Addr() + "/other"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("/other: %s", resp.Status)
		}
	}
}

func TestServeRefusesBadAddresses(t *testing.T) {
	m := New()
	for _, addr := range []string{"", "9464", "127.0.0.1:99999"} {
		if s, err := m.Serve(addr, zerolog.Nop()); err == nil {
			s.Close()
			t.Errorf("Serve(%q) succeeded", addr)
		}
	}
}
