package bench

import (
	"bytes"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/cmd/vigil/internal/doctor"
)

// onKernel returns fixture() as measured on another kernel, every ns/op
// scaled by slow (a guest under emulation) and vigil-passthrough's by
// extra on top.
func onKernel(kernel string, slow, extra float64) *Results {
	r := fixture()
	r.Kernel = kernel
	for i := range r.Results {
		r.Results[i].NsPerOpMedian *= slow
		if r.Results[i].Mechanism == "vigil-passthrough" {
			r.Results[i].NsPerOpMedian *= extra
		}
	}
	r.fillRatios()
	return r
}

func TestWriteCompareRunsShowsEachRunsRatioToItsOwnBare(t *testing.T) {
	host := fixture()
	guest := onKernel("6.1.0-57-amd64", 10, 2)
	third := onKernel("6.12.95+deb12-amd64", 5, 1)
	third.Results = third.Results[:3] // getpid only
	var buf bytes.Buffer
	if err := WriteCompareRuns(&buf, []string{"host", "6.1", "6.12"}, []*Results{host, guest, third}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"A: host · kernel 6.18.0-test",
		"C: 6.12 · kernel 6.12.95+deb12-amd64",
		"A NS/OP (×BARE)",
		kernelsDifferNote,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("comparison lacks %q:\n%s", want, out)
		}
	}
	// open under vigil-passthrough: 7.5 µs (7.50×) on the host; ten times
	// slower and twice the cost relative to bare in the guest; absent in C.
	row := regexp.MustCompile(`(?m)^open +vigil-passthrough +(.*)$`).FindStringSubmatch(out)
	if row == nil {
		t.Fatalf("no open vigil-passthrough row:\n%s", out)
	}
	got := regexp.MustCompile(`  +`).Split(strings.TrimSpace(row[1]), -1)
	want := []string{"7.50 µs (7.50×)", "150 µs (15.00×)", "—"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("row %q, want %q", got, want)
	}

	if err := WriteCompareRuns(&buf, []string{"a"}, []*Results{host}); err == nil {
		t.Error("one run compared")
	}
	other := fixture()
	other.Version = SchemaVersion + 1
	if err := WriteCompareRuns(&buf, []string{"a", "b", "c"}, []*Results{host, guest, other}); !errors.Is(err, ErrSchemaMismatch) {
		t.Errorf("mismatched versions: err %v", err)
	}
}

func TestWriteCompareOfTwoKernelsHasBareRatiosAndSaysSo(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteCompare(&buf, "host.json", fixture(), "guest.json", onKernel("6.1.0-57-amd64", 10, 2)); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	row := regexp.MustCompile(`(?m)^open +vigil-passthrough +(.*)$`).FindStringSubmatch(out)
	if row == nil {
		t.Fatalf("no row:\n%s", out)
	}
	got := regexp.MustCompile(`  +`).Split(strings.TrimSpace(row[1]), -1)
	want := []string{"7.50 µs", "7.50×", "150 µs", "15.00×", "20.00"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("row %q, want %q", got, want)
	}
	if !strings.Contains(out, kernelsDifferNote) {
		t.Errorf("no note that kernels differ:\n%s", out)
	}
}

// TestDoctorComparisonReadsBenchFiles is the contract between this
// package's results file and doctor.LoadRun, which reads the costs (it
// cannot import this package).
func TestDoctorComparisonReadsBenchFiles(t *testing.T) {
	r := onKernel("6.1.0-57-amd64", 10, 2)
	r.Results[len(r.Results)-1].Outcome = "denied"
	name := filepath.Join(t.TempDir(), "6.1.json")
	if err := r.WriteFile(name); err != nil {
		t.Fatal(err)
	}
	run, err := doctor.LoadRun(name)
	if err != nil {
		t.Fatal(err)
	}
	if run.Name != "6.1" || run.Report.Kernel != r.Doctor.Kernel || len(run.Costs) != len(r.Results) {
		t.Fatalf("run %+v from %+v", run, r)
	}
	for i, c := range run.Costs {
		x := r.Results[i]
		if c.Workload != x.Workload || c.Mechanism != x.Mechanism || c.RatioBare != x.RatioBare || c.Denied != (x.Outcome == "denied") {
			t.Errorf("cost %d = %+v, from %+v", i, c, x)
		}
	}
}
