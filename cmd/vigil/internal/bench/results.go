package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/vigilsec/vigil/cmd/vigil/internal/doctor"
)

// SchemaVersion is the "version" field of the results JSON. Bump it when a
// field changes meaning or goes away; added fields keep it.
//
// Version 2: the refsup mechanism traps execve and connect too (it trapped
// open and openat only), so its exec and connect rows, and every
// ratio_reference of those workloads, mean something else than in version
// 1. Added: threads, ops_per_sec, memory, other_tracepoints, the
// open-threads-T workloads and the bare-beside-vigil mechanism.
const SchemaVersion = 2

// Results is one `vigil bench` run: the machine, the doctor report and one
// Result per workload × mechanism measured.
type Results struct {
	Version  int       `json:"version"`
	Time     time.Time `json:"time"`
	Kernel   string    `json:"kernel"`
	Hostname string    `json:"hostname"`
	CPUs     int       `json:"cpus"`
	// LoadAvg is /proc/loadavg's 1, 5 and 15 minute averages when the run
	// started: other work on the machine shows up as spread.
	LoadAvg string        `json:"loadavg,omitempty"`
	Doctor  doctor.Report `json:"doctor"`
	Results []Result      `json:"results"`
	// Memory is vigil's resident set size over a long run, when measured.
	Memory *Memory `json:"memory,omitempty"`
	// NotMeasured lists the selected mechanisms that could not run.
	NotMeasured []NotMeasured `json:"not_measured,omitempty"`
	// OtherTracepoints lists processes outside the bench ("comm[pid]")
	// seen holding an eBPF link on sys_enter or sys_exit between
	// repetitions: their programs run on every syscall of the host, bare
	// runs included, so the getpid rows are not clean while they do.
	OtherTracepoints []string `json:"other_tracepoints,omitempty"`
}

// Result is one workload under one mechanism. Times are nanoseconds per
// operation; ratios are 0 when the baseline was not measured.
type Result struct {
	Workload       string  `json:"workload"`
	Mechanism      string  `json:"mechanism"`
	Iterations     int     `json:"iterations"`
	Reps           int     `json:"reps"`
	NsPerOpMedian  float64 `json:"ns_per_op_median"`
	NsMin          float64 `json:"ns_min"`
	NsMax          float64 `json:"ns_max"`
	RatioBare      float64 `json:"ratio_bare"`
	RatioReference float64 `json:"ratio_reference"`
	// Outcome is "allowed" or "denied": what every operation got.
	Outcome string `json:"outcome"`
	// StartupMsMedian is the median time of a run with 0 iterations.
	StartupMsMedian float64 `json:"startup_ms_median"`
	// Threads is the number of threads of the workload process that
	// shared the operations out (1 for the single-threaded workloads).
	Threads int `json:"threads"`
	// OpsPerSec is 1e9 / NsPerOpMedian: operations per second of all the
	// threads together; 0 when the median is not positive (noise).
	OpsPerSec float64 `json:"ops_per_sec"`
}

// NotMeasured is a mechanism that was selected but could not run.
type NotMeasured struct {
	Mechanism string `json:"mechanism"`
	Reason    string `json:"reason"`
}

// Baselines of the ratios.
const (
	BareMechanism      = "bare"
	ReferenceMechanism = "refsup"
)

// fillRatios sets every result's ratios to the bare and reference results
// of the same workload.
func (r *Results) fillRatios() {
	base := map[string]float64{}
	ref := map[string]float64{}
	for _, x := range r.Results {
		switch x.Mechanism {
		case BareMechanism:
			base[x.Workload] = x.NsPerOpMedian
		case ReferenceMechanism:
			ref[x.Workload] = x.NsPerOpMedian
		}
	}
	for i := range r.Results {
		x := &r.Results[i]
		x.RatioBare = ratio(x.NsPerOpMedian, base[x.Workload])
		x.RatioReference = ratio(x.NsPerOpMedian, ref[x.Workload])
	}
}

// ratio returns a/b rounded to three decimals, or 0 when b is not positive.
func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return math.Round(a/b*1000) / 1000
}

// Write writes r as indented JSON.
func (r *Results) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encoding bench results: %w", err)
	}
	return nil
}

// WriteFile writes r to the named file.
func (r *Results) WriteFile(name string) error {
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	if err := r.Write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// Read decodes results written by Write. A file without a version is not
// a results file.
func Read(rd io.Reader) (*Results, error) {
	var r Results
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("decoding bench results: %w", err)
	}
	if r.Version == 0 {
		return nil, fmt.Errorf("decoding bench results: no schema version (not a vigil bench file?)")
	}
	return &r, nil
}

// ReadFile reads results from the named file.
func ReadFile(name string) (*Results, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", name, err)
	}
	defer f.Close()
	r, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}
