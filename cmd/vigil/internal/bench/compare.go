package bench

import (
	"errors"
	"fmt"
	"io"
)

// ErrSchemaMismatch is returned when two results files have different
// schema versions.
var ErrSchemaMismatch = errors.New("schema versions differ")

// Pair is one workload × mechanism in a comparison of two results.
type Pair struct {
	Workload, Mechanism string
	// A and B are the median ns/op in each file; InA and InB say whether
	// the file has the pair at all.
	A, B     float64
	InA, InB bool
}

// Ratio returns B/A, and false when either side is missing or A is not
// positive.
func (p Pair) Ratio() (float64, bool) {
	if !p.InA || !p.InB || p.A <= 0 {
		return 0, false
	}
	return p.B / p.A, true
}

// Compare pairs the results of a and b by workload and mechanism: a's pairs
// in a's order, then those only b has, in b's order.
func Compare(a, b *Results) ([]Pair, error) {
	if a.Version != b.Version {
		return nil, fmt.Errorf("comparing version %d with version %d: %w", a.Version, b.Version, ErrSchemaMismatch)
	}
	type key struct{ w, m string }
	inB := map[key]float64{}
	for _, x := range b.Results {
		inB[key{x.Workload, x.Mechanism}] = x.NsPerOpMedian
	}
	seen := map[key]bool{}
	var out []Pair
	for _, x := range a.Results {
		k := key{x.Workload, x.Mechanism}
		seen[k] = true
		p := Pair{Workload: x.Workload, Mechanism: x.Mechanism, A: x.NsPerOpMedian, InA: true}
		p.B, p.InB = inB[k]
		out = append(out, p)
	}
	for _, x := range b.Results {
		if k := (key{x.Workload, x.Mechanism}); !seen[k] {
			seen[k] = true
			out = append(out, Pair{Workload: x.Workload, Mechanism: x.Mechanism, B: x.NsPerOpMedian, InB: true})
		}
	}
	return out, nil
}

// WriteCompare writes the comparison of a (named nameA) and b as a table
// with the ratio B/A; pairs present in only one file say so.
func WriteCompare(w io.Writer, nameA string, a *Results, nameB string, b *Results) error {
	pairs, err := Compare(a, b)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "A: %s · kernel %s · %s · %s\n", nameA, a.Kernel, a.Hostname, a.Time.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "B: %s · kernel %s · %s · %s\n", nameB, b.Kernel, b.Hostname, b.Time.Format("2006-01-02 15:04 MST"))
	t := &table{
		header: []string{"WORKLOAD", "MECHANISM", "A NS/OP", "B NS/OP", "B/A"},
		right:  []bool{false, false, true, true, true},
	}
	for _, p := range pairs {
		av, bv, rv := "—", "—", "n/a"
		if p.InA {
			av = formatNs(p.A)
		}
		if p.InB {
			bv = formatNs(p.B)
		}
		switch r, ok := p.Ratio(); {
		case ok:
			rv = fmt.Sprintf("%.2f", r)
		case !p.InB:
			rv = "only in A"
		case !p.InA:
			rv = "only in B"
		}
		t.add(p.Workload, p.Mechanism, av, bv, rv)
	}
	if err := t.write(w); err != nil {
		return fmt.Errorf("writing comparison: %w", err)
	}
	return nil
}
