package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vigilsec/vigil/cmd/vigil/internal/doctor"
	"github.com/vigilsec/vigil/enforcer/launch"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

func TestMain(m *testing.M) {
	// The filter-only mechanism starts watchees through vigil's init step,
	// and Run probes with the doctor's helper: both re-execute this binary.
	launch.RunInitIfRequested()
	doctor.RunHelperIfRequested()
	os.Exit(m.Run())
}

// buildVigil builds cmd/vigil for the vigil-* mechanisms.
func buildVigil(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "vigil")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/vigil")
	cmd.Dir = testenv.RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building vigil: %v\n%s", err, b)
	}
	return out
}

// TestSmokeRunMeasuresEveryCell runs two workloads under three mechanisms
// with a fixed, small iteration count and one repetition. exec and connect
// cost tens of microseconds or more per operation, so even a single short
// run usually stands clear of start-up noise. The test asserts nothing about
// time: on a loaded machine one short run can even measure less than its own
// start-up, so it checks the figures are real numbers and the outcome and
// counts are what was asked for.
func TestSmokeRunMeasuresEveryCell(t *testing.T) {
	testenv.RequirePrivileged(t)
	vigil := buildVigil(t)
	res, err := Run(context.Background(), Config{
		Vigil:      vigil,
		Iterations: 300,
		Reps:       1,
		Workloads:  []string{"exec", "connect"},
		Mechanisms: []string{"bare", "filter-only", "vigil-passthrough"},
		Log:        zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 6 {
		t.Fatalf("%d results, want 2 workloads x 3 mechanisms:\n%+v", len(res.Results), res.Results)
	}
	for _, r := range res.Results {
		name := fmt.Sprintf("%s/%s", r.Workload, r.Mechanism)
		if r.Iterations != 300 || r.Reps != 1 || r.Outcome != "allowed" {
			t.Errorf("%s: %+v", name, r)
		}
		for _, v := range []float64{r.NsPerOpMedian, r.NsMin, r.NsMax, r.RatioBare} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Errorf("%s: figure that is not a number in %+v", name, r)
			}
		}
		if r.NsMin > r.NsPerOpMedian || r.NsPerOpMedian > r.NsMax {
			t.Errorf("%s: median outside [min, max] in %+v", name, r)
		}
	}
	if len(res.NotMeasured) != 0 {
		t.Errorf("not measured: %+v, want every mechanism measured", res.NotMeasured)
	}
	if !res.Doctor.CanRun || res.Version != SchemaVersion || res.Kernel == "" {
		t.Errorf("header: version %d kernel %q doctor can_run %v", res.Version, res.Kernel, res.Doctor.CanRun)
	}
}
