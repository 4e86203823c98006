package bench

import (
	"errors"
	"image/color"
	"testing"
)

func TestSummarizeSubtractsTheMedianStartup(t *testing.T) {
	// Three reps of 1000 iterations: runs of 1000 take 12, 11, 13 ms; empty
	// runs 2, 1, 3 ms (median 2 ms) -> ns/op 10000, 9000, 11000.
	r := summarize([]float64{12e6, 11e6, 13e6}, []float64{2e6, 1e6, 3e6}, 1000)
	want := Result{Iterations: 1000, Reps: 3, NsPerOpMedian: 10000, NsMin: 9000, NsMax: 11000, StartupMsMedian: 2}
	if r != want {
		t.Fatalf("summarize = %+v, want %+v", r, want)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestNiceCount(t *testing.T) {
	for in, want := range map[float64]int{3: minIterations, 178342: 180000, 1234: 1200, 99.6: 100, 1e12: maxIterations} {
		if got := niceCount(in); got != want {
			t.Errorf("niceCount(%v) = %d, want %d", in, got, want)
		}
	}
}

func TestCheckOutcome(t *testing.T) {
	for _, tc := range []struct {
		o    outcome
		n    int
		want string
		ok   bool
	}{
		{outcome{ok: 10}, 10, "allowed", true},
		{outcome{failed: 10, first: "EACCES"}, 10, "denied", true},
		{outcome{ok: 9, failed: 1, first: "EPERM"}, 10, "allowed", false},
		{outcome{ok: 1, failed: 9}, 10, "denied", false},
		{outcome{ok: 5}, 10, "allowed", false},
		{outcome{}, 0, "denied", true},
	} {
		if err := checkOutcome(tc.o, tc.n, tc.want); (err == nil) != tc.ok {
			t.Errorf("checkOutcome(%+v, %d, %s) = %v", tc.o, tc.n, tc.want, err)
		}
	}
}

func TestParseOutcomeFindsTheResultLineAmongOtherOutput(t *testing.T) {
	o, err := parseOutcome([]byte("{\"event\":1}\nvigil-bench-result 7 3 EACCES\nmore\n"))
	if err != nil || o != (outcome{ok: 7, failed: 3, first: "EACCES"}) {
		t.Fatalf("parseOutcome = %+v, %v", o, err)
	}
	if _, err := parseOutcome([]byte("nothing here\n")); err == nil {
		t.Fatal("parsed output without a result line")
	}
}

func TestSelectByName(t *testing.T) {
	ws, err := selectWorkloads([]string{"exec", "getpid"})
	if err != nil || len(ws) != 2 || ws[0].Name != "exec" {
		t.Fatalf("selectWorkloads = %v, %v", ws, err)
	}
	if _, err := selectWorkloads([]string{"fork"}); !errors.Is(err, ErrUnknownName) {
		t.Fatalf("unknown workload: %v", err)
	}
	if _, err := selectMechanisms([]string{"gvisor"}); !errors.Is(err, ErrUnknownName) {
		t.Fatalf("unknown mechanism: %v", err)
	}
	ms, err := selectMechanisms(nil)
	if err != nil || len(ms) != len(Mechanisms()) {
		t.Fatalf("all mechanisms: %d, %v", len(ms), err)
	}
}

func TestEveryMechanismHasAColourAndTheUnbuiltOnesSaySo(t *testing.T) {
	owner := map[color.RGBA]string{}
	for _, m := range Mechanisms() {
		c, ok := mechanismColors[m.Name]
		if !ok {
			t.Errorf("%s has no chart colour", m.Name)
			continue
		}
		if o, taken := owner[c]; taken {
			t.Errorf("%s and %s share the chart colour %v", o, m.Name, c)
		}
		owner[c] = m.Name
	}
	for _, m := range Mechanisms() {
		if m.Unavailable != "" && m.Unavailable != notInBuild {
			t.Errorf("%s: unavailable for an unexplained reason %q", m.Name, m.Unavailable)
		}
	}
}
