package bench

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/cmd/vigil/internal/doctor"
)

// fixture returns results with two workloads and three mechanisms.
func fixture() *Results {
	r := &Results{
		Version: SchemaVersion, Time: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
		Kernel: "6.18.0-test", Hostname: "box", CPUs: 2, LoadAvg: "0.10 0.20 0.30",
		Doctor: doctor.Report{Kernel: "6.18.0-test", CanRun: true, Features: []doctor.Feature{
			{Name: doctor.SeccompUserNotif, Available: true, Detail: "notif 80", Required: true, Use: "u", Remedy: "r"},
		}},
		NotMeasured: []NotMeasured{{Mechanism: "vigil-emulate", Reason: notInBuild}},
	}
	for _, w := range []struct {
		name string
		ns   []float64 // bare, refsup, vigil-passthrough
	}{{"getpid", []float64{100, 110, 120}}, {"open", []float64{1000, 5000, 7500}}} {
		for i, m := range []string{"bare", "refsup", "vigil-passthrough"} {
			r.Results = append(r.Results, Result{
				Workload: w.name, Mechanism: m, Iterations: 1000, Reps: 5,
				NsPerOpMedian: w.ns[i], NsMin: w.ns[i] * 0.9, NsMax: w.ns[i] * 1.2,
				Outcome: "allowed", StartupMsMedian: 1.5,
			})
		}
	}
	r.fillRatios()
	return r
}

func TestResultsJSONRoundTrip(t *testing.T) {
	r := fixture()
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip changed the results:\n got %+v\nwant %+v", got, r)
	}
	// The schema's field names are a contract with other tools.
	var raw map[string]any
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "time", "kernel", "hostname", "cpus", "doctor", "results"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("results JSON lacks %q", k)
		}
	}
	row := raw["results"].([]any)[0].(map[string]any)
	for _, k := range []string{"workload", "mechanism", "iterations", "reps", "ns_per_op_median",
		"ns_min", "ns_max", "ratio_bare", "ratio_reference"} {
		if _, ok := row[k]; !ok {
			t.Errorf("result row lacks %q: %v", k, row)
		}
	}
	if _, ok := raw["doctor"].(map[string]any)["can_run"]; !ok {
		t.Error("embedded doctor report lacks can_run")
	}
}

func TestReadRejectsAFileWithoutVersion(t *testing.T) {
	if _, err := Read(strings.NewReader(`{"results": []}`)); err == nil {
		t.Fatal("accepted results without a schema version")
	}
	if _, err := Read(strings.NewReader(`not json`)); err == nil {
		t.Fatal("accepted a file that is not JSON")
	}
}

func TestRatiosAgainstBareAndReference(t *testing.T) {
	r := fixture()
	for _, x := range r.Results {
		if x.Workload != "open" {
			continue
		}
		want := map[string][2]float64{
			"bare":              {1, 0.2},
			"refsup":            {5, 1},
			"vigil-passthrough": {7.5, 1.5},
		}[x.Mechanism]
		if x.RatioBare != want[0] || x.RatioReference != want[1] {
			t.Errorf("%s: ratios %v/%v, want %v", x.Mechanism, x.RatioBare, x.RatioReference, want)
		}
	}
	// Without the baselines the ratios are 0 (unknown), never Inf or NaN.
	r2 := &Results{Results: []Result{{Workload: "open", Mechanism: "strace", NsPerOpMedian: 20000}}}
	r2.fillRatios()
	if got := r2.Results[0]; got.RatioBare != 0 || got.RatioReference != 0 {
		t.Errorf("ratios without baselines: %+v", got)
	}
}

func TestWriteTableShowsEveryRowAndWhatWasNotMeasured(t *testing.T) {
	var buf bytes.Buffer
	if err := fixture().WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"kernel 6.18.0-test", "load 0.10 0.20 0.30", "7.50 µs", "1.50×", "not measured: vigil-emulate: " + notInBuild} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if got := strings.Count(out, "\n"); got != 1+1+6+1 {
		t.Errorf("table has %d lines, want 9:\n%s", got, out)
	}
}

func TestWriteSVGDrawsEveryWorkloadAndMechanism(t *testing.T) {
	r := fixture()
	r.Results[0].Outcome = "denied"
	r.Results[1].NsPerOpMedian = -3 // noise: not drawable on a log scale, must not break the chart
	var buf bytes.Buffer
	if err := r.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "<svg") {
		t.Fatalf("not an SVG: %.200s", out)
	}
	for _, want := range []string{"getpid", "open", "bare", "refsup", "vigil-passthrough"} {
		if !strings.Contains(out, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	if err := (&Results{}).WriteSVG(&buf); err == nil {
		t.Error("drew a chart of no results")
	}
}
