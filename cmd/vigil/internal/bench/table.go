package bench

import (
	"fmt"
	"io"
	"strconv"
)

// WriteTable writes r as a text table: one row per workload × mechanism,
// ns/op as the median of the repetitions with their min and max, the
// ratios to bare and to the C reference, and the start-up time of a run.
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
	for _, n := range r.NotMeasured {
		fmt.Fprintf(w, "not measured: %s: %s\n", n.Mechanism, n.Reason)
	}
	return nil
}
