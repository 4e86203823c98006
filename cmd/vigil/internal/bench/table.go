package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteTable writes r as a text table: one row per workload × mechanism,
// ns/op as the median of the repetitions with their min and max, the
// ratios to bare and to the C reference, and the start-up time of a run.
// Then the throughput of the multi-threaded workloads, vigil's memory and
// what was not measured.
func (r *Results) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "vigil bench · kernel %s · %d CPUs · %s · %s", r.Kernel, r.CPUs, r.Hostname, r.Time.Format("2006-01-02 15:04 MST"))
	if r.LoadAvg != "" {
		fmt.Fprintf(w, " · load %s", r.LoadAvg)
	}
	fmt.Fprintln(w)
	t := &table{
		header: []string{"WORKLOAD", "MECHANISM", "OUTCOME", "ITERATIONS", "REPS", "NS/OP", "MIN", "MAX", "×BARE", "×REFSUP", "STARTUP"},
		right:  []bool{false, false, false, true, true, true, true, true, true, true, true},
	}
	for _, x := range r.Results {
		t.add(x.Workload, x.Mechanism, x.Outcome, strconv.Itoa(x.Iterations), strconv.Itoa(x.Reps),
			formatNs(x.NsPerOpMedian), formatNs(x.NsMin), formatNs(x.NsMax),
			formatRatio(x.RatioBare), formatRatio(x.RatioReference),
			formatNs(x.StartupMsMedian*1e6))
	}
	if err := t.write(w); err != nil {
		return fmt.Errorf("writing bench table: %w", err)
	}
	if err := r.writeThroughput(w); err != nil {
		return err
	}
	if m := r.Memory; m != nil {
		fmt.Fprintf(w, "\nmemory of %s (VmRSS) over %d trapped calls of %s: at rest %s (anon %s), under load %s (max %s, %d readings), at rest after the calls %s (anon %s; growth after the first round %+d KiB, anon %+d KiB), peak %s; %s calls/s\n",
			m.Mechanism, m.Calls, m.Workload, formatKiB(m.RestKiB), formatKiB(m.RestAnonKiB), formatKiB(m.LoadKiBMedian), formatKiB(m.LoadKiBMax), m.LoadSamples,
			formatKiB(m.AfterKiB), formatKiB(m.AfterAnonKiB), m.GrowthKiB, m.GrowthAnonKiB, formatKiB(m.PeakKiB), formatCount(m.OpsPerSec))
	}
	if len(r.OtherTracepoints) > 0 {
		fmt.Fprintf(w, "other eBPF on sys_enter/sys_exit while measuring (taxes every row, bare included): %s\n", strings.Join(r.OtherTracepoints, ", "))
	}
	for _, n := range r.NotMeasured {
		fmt.Fprintf(w, "not measured: %s: %s\n", n.Mechanism, n.Reason)
	}
	return nil
}

// writeThroughput writes the multi-threaded rows again as operations per
// second, the figure that counts for them, with the ratio of vigil's
// throughput to the C reference's (the inverse of ×REFSUP).
func (r *Results) writeThroughput(w io.Writer) error {
	t := &table{
		header: []string{"WORKLOAD", "THREADS", "MECHANISM", "OUTCOME", "OPS/S", "OPS/S ÷ REFSUP"},
		right:  []bool{false, true, false, false, true, true},
	}
	for _, x := range r.Results {
		if !strings.HasPrefix(x.Workload, threadsPrefix) {
			continue
		}
		rel := "—"
		if x.RatioReference > 0 {
			rel = fmt.Sprintf("%.2f", 1/x.RatioReference)
		}
		t.add(x.Workload, strconv.Itoa(x.Threads), x.Mechanism, x.Outcome, formatCount(x.OpsPerSec), rel)
	}
	if len(t.rows) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	if err := t.write(w); err != nil {
		return fmt.Errorf("writing throughput table: %w", err)
	}
	return nil
}
