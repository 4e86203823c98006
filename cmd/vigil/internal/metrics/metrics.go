// Package metrics exports what vigil decides and sees as Prometheus metrics
// (`vigil run --metrics-addr`, `vigil agent --metrics-addr`). It implements
// enforcer.Metrics for the supervisors and the eBPF side, and counts the
// agent's containers and refused handoffs. The README's "Metrics" section
// documents every metric; keep it in sync with the descriptions here.
package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vigilsec/vigil/cmd/vigil/internal/version"
	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/policy"
)

// Label names of vigil_decisions_total; they are the audit record's field
// names (enforcer/audit).
const (
	LabelSyscall  = "syscall"
	LabelAction   = "action"
	LabelRule     = "rule"
	LabelVerified = "verified"
	LabelEmulated = "emulated"
)

// LatencyBuckets are vigil_decision_latency_seconds' upper bounds: 1µs to
// about 1s by factors of 4. A decision answered in the notify loop takes
// microseconds; an emulated connect takes as long as the connect.
var LatencyBuckets = prometheus.ExponentialBuckets(1e-6, 4, 11)

// Metrics holds vigil's collectors in a registry of their own (plus the Go
// runtime's and the process's). The zero value is not usable; call New.
type Metrics struct {
	reg *prometheus.Registry

	decisions  *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	emulation  *prometheus.CounterVec
	bindings   prometheus.Counter
	mismatches *prometheus.CounterVec
	lost       prometheus.Counter

	supervised prometheus.Counter
	refused    prometheus.Counter

	tracepoints sync.Once

	// children caches the label children of each decision kind seen, so a
	// decision costs a map lookup under a read lock and two atomic adds:
	// no allocation and no label hashing by the client library.
	mu       sync.RWMutex
	children map[decisionKey]decisionChild
}

var (
	_ enforcer.Metrics           = (*Metrics)(nil)
	_ enforcer.TracepointMetrics = (*Metrics)(nil)
)

type decisionKey struct {
	syscall, rule, verified string
	action                  policy.Action
	emulated                bool
}

type decisionChild struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// New returns Metrics with vigil's collectors registered.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_decisions_total",
			Help: "Decisions on trapped syscalls, one per audit record, by the record's syscall, action, rule, verified and emulated fields.",
		}, []string{LabelSyscall, LabelAction, LabelRule, LabelVerified, LabelEmulated}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_decision_latency_seconds",
			Help:    "Time from receiving a notification to answering it (the audit record's latency_us), by syscall.",
			Buckets: LatencyBuckets,
		}, []string{LabelSyscall}),
		emulation: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_emulation_errors_total",
			Help: "Emulations that failed for another reason than the call's own error; the call was denied.",
		}, []string{LabelSyscall}),
		bindings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_bindings_written_total",
			Help: "eBPF bindings written before continuing a call whose verdict depended on its pointer arguments.",
		}),
		mismatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_binding_mismatches_total",
			Help: "Bindings the kernel found violated (the object or argument bytes differed); eBPF killed the caller.",
		}, []string{LabelSyscall}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_kernel_events_lost_total",
			Help: "Kernel events lost because the ring buffer was full; their records say verified unconfirmed.",
		}),
		children: make(map[decisionKey]decisionChild),
	}
	in := version.Get()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "vigil_build_info",
		Help: "Always 1; the labels say which vigil runs, with which libseccomp, on which kernel.",
		ConstLabels: prometheus.Labels{
			"version": in.Version, "commit": in.Commit, "goversion": in.GoVersion,
			"libseccomp": in.Libseccomp, "kernel": in.Kernel,
		},
	})
	build.Set(1)
	m.reg.MustRegister(m.decisions, m.latency, m.emulation, m.bindings, m.mismatches, m.lost, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry Serve exposes (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Decision implements enforcer.Metrics.
func (m *Metrics) Decision(syscall string, action policy.Action, rule, verified string, emulated bool, latency time.Duration) {
	k := decisionKey{syscall: syscall, rule: rule, verified: verified, action: action, emulated: emulated}
	m.mu.RLock()
	c, ok := m.children[k]
	m.mu.RUnlock()
	if !ok {
		c = m.child(k)
	}
	c.count.Inc()
	c.latency.Observe(latency.Seconds())
}

// child resolves and caches the label children of k, once per kind.
func (m *Metrics) child(k decisionKey) decisionChild {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.children[k]; ok {
		return c
	}
	c := decisionChild{
		count:   m.decisions.WithLabelValues(k.syscall, k.action.String(), k.rule, k.verified, strconv.FormatBool(k.emulated)),
		latency: m.latency.WithLabelValues(k.syscall),
	}
	m.children[k] = c
	return c
}

// EmulationFailed implements enforcer.Metrics.
func (m *Metrics) EmulationFailed(syscall string) { m.emulation.WithLabelValues(syscall).Inc() }

// BindingWritten implements enforcer.Metrics.
func (m *Metrics) BindingWritten() { m.bindings.Inc() }

// Mismatch implements enforcer.Metrics.
func (m *Metrics) Mismatch(syscall string) { m.mismatches.WithLabelValues(syscall).Inc() }

// LostEvents implements enforcer.Metrics.
func (m *Metrics) LostEvents(n uint64) { m.lost.Add(float64(n)) }

// SyscallTracepoints implements enforcer.TracepointMetrics: it adds whether
// vigil's sys_enter and sys_exit programs are attached now (every syscall of
// the host pays for them while they are) and how often they were attached
// on demand, both read from state at every scrape. Later calls do nothing.
func (m *Metrics) SyscallTracepoints(state func() (attached bool, attaches uint64)) {
	m.tracepoints.Do(func() {
		now := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_syscall_tracepoints_attached",
			Help: "1 while vigil's sys_enter and sys_exit eBPF programs are attached (every syscall of the host takes the kernel's slow path then), else 0.",
		}, func() float64 {
			if attached, _ := state(); attached {
				return 1
			}
			return 0
		})
		total := prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "vigil_syscall_tracepoints_attaches_total",
			Help: "Times the syscall tracepoints were attached on demand (a binding or the emulator needed them after an idle --detach-idle); 0 when they stay attached.",
		}, func() float64 {
			_, n := state()
			return float64(n)
		})
		m.reg.MustRegister(now, total)
	})
}

// RegisterAgent adds the agent's metrics: the containers supervised now
// (read from current at every scrape), since start, and the handoffs
// refused. Call it once, in agent mode only.
func (m *Metrics) RegisterAgent(current func() int) {
	m.supervised = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_agent_containers_supervised_total",
		Help: "Containers whose listener the agent took over and supervised, since the agent started.",
	})
	m.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_agent_handoffs_refused_total",
		Help: "Handoff connections refused (peer not root, malformed handoff, no valid policy, ...); each refused container's trapped syscalls fail with ENOSYS.",
	})
	now := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vigil_agent_containers",
		Help: "Containers the agent supervises now.",
	}, func() float64 { return float64(current()) })
	m.reg.MustRegister(m.supervised, m.refused, now)
}

// ContainerSupervised implements agent.Metrics.
func (m *Metrics) ContainerSupervised() {
	if m.supervised != nil {
		m.supervised.Inc()
	}
}

// HandoffRefused implements agent.Metrics.
func (m *Metrics) HandoffRefused() {
	if m.refused != nil {
		m.refused.Inc()
	}
}
