package enforcer

import (
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/enforcer/policy"
)

// Metrics receives counts of what supervisors and the Kernel decide and see,
// for export (`vigil run --metrics-addr`). Calls come concurrently from every
// notify loop, from emulation goroutines and from the kernel event reader:
// implementations must be safe for concurrent use, must not block, and
// should not allocate (Decision runs once per trapped syscall).
type Metrics interface {
	// Decision is called once per audit record, whatever the audit level,
	// with the record's syscall, action, rule, verified and emulated fields
	// and its latency. verified is "" where the record has none.
	Decision(syscall string, action policy.Action, rule, verified string, emulated bool, latency time.Duration)
	// EmulationFailed counts an emulation that failed for another reason
	// than the call's own errno (the call was then denied).
	EmulationFailed(syscall string)
	// BindingWritten counts a binding written to the kernel before a CONTINUE.
	BindingWritten()
	// Mismatch counts a binding the kernel found violated: eBPF killed the
	// caller.
	Mismatch(syscall string)
	// LostEvents adds kernel events lost because the ring buffer was full.
	LostEvents(n uint64)
}

// nopMetrics is the Metrics of a Config without one.
type nopMetrics struct{}

func (nopMetrics) Decision(string, policy.Action, string, string, bool, time.Duration) {}
func (nopMetrics) EmulationFailed(string)                                              {}
func (nopMetrics) BindingWritten()                                                     {}
func (nopMetrics) Mismatch(string)                                                     {}
func (nopMetrics) LostEvents(uint64)                                                   {}

// metricsBox lets the Kernel swap its Metrics atomically: the event reader
// runs from NewKernel on.
type metricsBox struct{ m Metrics }

// TracepointMetrics is what a Metrics may also implement to follow the
// syscall tracepoints, which the loader attaches only while vigil needs them
// (loader/lazy.go): state is read at every scrape.
type TracepointMetrics interface {
	SyscallTracepoints(state func() (attached bool, attaches uint64))
}

// SetMetrics makes k report bindings, mismatches and lost events to m, and
// the state of its syscall tracepoints when m is a TracepointMetrics.
func (k *Kernel) SetMetrics(m Metrics) {
	if m == nil {
		m = nopMetrics{}
	}
	k.metrics.Store(&metricsBox{m})
	if t, ok := m.(TracepointMetrics); ok {
		t.SyscallTracepoints(func() (bool, uint64) {
			attached, attaches, _ := k.ld.SyscallTracepointsAttached()
			return attached, attaches
		})
	}
}

func (k *Kernel) m() Metrics {
	if b := k.metrics.Load(); b != nil {
		return b.m
	}
	return nopMetrics{}
}

// kernelMetrics is embedded in Kernel.
type kernelMetrics struct {
	metrics atomic.Pointer[metricsBox]
}
