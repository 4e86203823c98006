package bench

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vigilsec/vigil/enforcer/testenv"
)

func TestObserveLostNothing(t *testing.T) {
	for _, c := range []struct {
		stderr, wantErr string
	}{
		{`{"level":"info","events":12,"lost":0,"message":"observe finished"}`, ""},
		{"vigil-bench-result 1 0 -\n" + `{"level":"warn","events":12,"lost":3,"message":"observe finished"}`, "lost 3 records"},
		{`{"level":"info","message":"something else"}`, "no summary line"},
		{`{"level":"info","events":12,"message":"observe finished"}`, "no lost count"},
	} {
		p := filepath.Join(t.TempDir(), "stderr")
		if err := os.WriteFile(p, []byte(c.stderr+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := observeLostNothing(p)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: %v", c.stderr, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: error %v, want %q", c.stderr, err, c.wantErr)
		}
	}
}

// TestObserveMechanismMeasuresOpen runs the open workload under vigil
// observe through the bench, whose verify step requires the run to have
// lost no record.
func TestObserveMechanismMeasuresOpen(t *testing.T) {
	testenv.RequirePrivileged(t)
	res, err := Run(context.Background(), Config{
		Vigil:      buildVigil(t),
		Iterations: 2000,
		Reps:       1,
		Workloads:  []string{"open"},
		Mechanisms: []string{"bare", "vigil-observe"},
		Log:        zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 2 {
		t.Fatalf("%d results, want 2: %+v", len(res.Results), res.Results)
	}
	for _, r := range res.Results {
		if r.Iterations != 2000 || r.Outcome != "allowed" || math.IsNaN(r.NsPerOpMedian) {
			t.Errorf("%s: %+v", r.Mechanism, r)
		}
	}
}
