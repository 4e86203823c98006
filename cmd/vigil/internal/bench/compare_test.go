package bench

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

func results(version int, rows ...Result) *Results {
	return &Results{Version: version, Results: rows}
}

func row(w, m string, ns float64) Result { return Result{Workload: w, Mechanism: m, NsPerOpMedian: ns} }

func TestCompare(t *testing.T) {
	type want struct {
		w, m     string
		inA, inB bool
		ratio    float64 // NaN: no ratio
	}
	nan := math.NaN()
	cases := []struct {
		name string
		a, b *Results
		want []want
	}{
		{"same file", results(1, row("open", "bare", 1000), row("open", "refsup", 5000)),
			results(1, row("open", "bare", 1000), row("open", "refsup", 5000)),
			[]want{{"open", "bare", true, true, 1}, {"open", "refsup", true, true, 1}}},
		{"slower and faster", results(1, row("open", "bare", 1000), row("exec", "bare", 400)),
			results(1, row("open", "bare", 1500), row("exec", "bare", 100)),
			[]want{{"open", "bare", true, true, 1.5}, {"exec", "bare", true, true, 0.25}}},
		{"pairs in only one file", results(1, row("open", "bare", 1000), row("open", "strace", 20000)),
			results(1, row("open", "bare", 2000), row("connect", "bare", 13000)),
			[]want{{"open", "bare", true, true, 2}, {"open", "strace", true, false, nan}, {"connect", "bare", false, true, nan}}},
		{"zero in A", results(1, row("getpid", "bare", 0)), results(1, row("getpid", "bare", 100)),
			[]want{{"getpid", "bare", true, true, nan}}},
		{"zero in B", results(1, row("getpid", "bare", 100)), results(1, row("getpid", "bare", 0)),
			[]want{{"getpid", "bare", true, true, 0}}},
		{"negative A (noise)", results(1, row("getpid", "bare", -5)), results(1, row("getpid", "bare", 100)),
			[]want{{"getpid", "bare", true, true, nan}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pairs, err := Compare(tc.a, tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if len(pairs) != len(tc.want) {
				t.Fatalf("%d pairs, want %d: %+v", len(pairs), len(tc.want), pairs)
			}
			for i, w := range tc.want {
				p := pairs[i]
				if p.Workload != w.w || p.Mechanism != w.m || p.InA != w.inA || p.InB != w.inB {
					t.Errorf("pair %d = %+v, want %+v", i, p, w)
				}
				r, ok := p.Ratio()
				switch {
				case math.IsNaN(w.ratio) && ok:
					t.Errorf("pair %d: ratio %v, want none", i, r)
				case !math.IsNaN(w.ratio) && (!ok || math.Abs(r-w.ratio) > 1e-9):
					t.Errorf("pair %d: ratio %v (%v), want %v", i, r, ok, w.ratio)
				}
			}
		})
	}
}

func TestCompareRefusesMismatchedSchemaVersions(t *testing.T) {
	_, err := Compare(results(1, row("open", "bare", 1)), results(2, row("open", "bare", 1)))
	if !errors.Is(err, ErrSchemaMismatch) {
		t.Fatalf("err = %v, want ErrSchemaMismatch", err)
	}
	if err := WriteCompare(&bytes.Buffer{}, "a", results(1), "b", results(2)); !errors.Is(err, ErrSchemaMismatch) {
		t.Fatalf("WriteCompare err = %v, want ErrSchemaMismatch", err)
	}
}

func TestWriteCompareOfAFileWithItselfShowsOnlyOnes(t *testing.T) {
	r := fixture()
	var buf bytes.Buffer
	if err := WriteCompare(&buf, "r.json", r, "r.json", r); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	rows := lines[3:] // A:, B:, header
	if len(rows) != len(r.Results) {
		t.Fatalf("%d rows, want %d:\n%s", len(rows), len(r.Results), buf.String())
	}
	for _, l := range rows {
		if !strings.HasSuffix(l, " 1.00") {
			t.Errorf("row %q does not end in ratio 1.00", l)
		}
	}
}

func TestWriteCompareNamesPairsInOnlyOneFile(t *testing.T) {
	a := results(1, row("open", "bare", 1000), row("open", "strace", 20000), row("getpid", "bare", 0))
	b := results(1, row("open", "bare", 1000), row("connect", "bare", 13000), row("getpid", "bare", 100))
	var buf bytes.Buffer
	if err := WriteCompare(&buf, "a.json", a, "b.json", b); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"only in A", "only in B", "n/a"} {
		if !strings.Contains(out, want) {
			t.Errorf("comparison lacks %q:\n%s", want, out)
		}
	}
}
