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
		header: []string{"WORKLOAD", "MECHANISM", "A NS/OP", "A ×BARE", "B NS/OP", "B ×BARE", "B/A"},
		right:  []bool{false, false, true, true, true, true, true},
	}
	ra, rb := ratiosToBare(a), ratiosToBare(b)
	for _, p := range pairs {
		av, bv, rv := "—", "—", "n/a"
		abare, bbare := "—", "—"
		k := pairKey{p.Workload, p.Mechanism}
		if p.InA {
			av, abare = formatNs(p.A), formatRatio(ra[k])
		}
		if p.InB {
			bv, bbare = formatNs(p.B), formatRatio(rb[k])
		}
		switch r, ok := p.Ratio(); {
		case ok:
			rv = fmt.Sprintf("%.2f", r)
		case !p.InB:
			rv = "only in A"
		case !p.InA:
			rv = "only in B"
		}
		t.add(p.Workload, p.Mechanism, av, abare, bv, bbare, rv)
	}
	if err := t.write(w); err != nil {
		return fmt.Errorf("writing comparison: %w", err)
	}
	if err := writeCompareMemory(w, a.Memory, b.Memory); err != nil {
		return err
	}
	if a.Kernel != b.Kernel {
		_, err := fmt.Fprintln(w, kernelsDifferNote)
		return err
	}
	return nil
}

// writeCompareMemory compares the memory measurements of two runs, when
// either has one.
func writeCompareMemory(w io.Writer, a, b *Memory) error {
	if a == nil && b == nil {
		return nil
	}
	t := &table{
		header: []string{"MEMORY (VMRSS)", "A", "B", "B/A"},
		right:  []bool{false, true, true, true},
	}
	// 0 is a figure the file does not have (a field added later).
	field := func(name string, get func(*Memory) int) {
		av, bv, rv := "—", "—", "n/a"
		if a != nil && get(a) > 0 {
			av = formatKiB(get(a))
		}
		if b != nil && get(b) > 0 {
			bv = formatKiB(get(b))
		}
		if a != nil && b != nil && get(a) > 0 {
			rv = fmt.Sprintf("%.2f", float64(get(b))/float64(get(a)))
		}
		t.add(name, av, bv, rv)
	}
	field("at rest", func(m *Memory) int { return m.RestKiB })
	field("under load (median)", func(m *Memory) int { return m.LoadKiBMedian })
	field("at rest after the calls", func(m *Memory) int { return m.AfterKiB })
	field("anonymous, at rest after the calls", func(m *Memory) int { return m.AfterAnonKiB })
	field("peak", func(m *Memory) int { return m.PeakKiB })
	fmt.Fprintln(w)
	if err := t.write(w); err != nil {
		return fmt.Errorf("writing memory comparison: %w", err)
	}
	return nil
}

// kernelsDifferNote is printed under comparisons of runs on different
// kernels.
const kernelsDifferNote = "kernels differ: ns/op of different kernels (or of a guest under emulation) are not comparable; compare the ×BARE columns"

type pairKey struct{ w, m string }

// ratiosToBare maps each workload × mechanism of r to its ratio_bare.
func ratiosToBare(r *Results) map[pairKey]float64 {
	out := make(map[pairKey]float64, len(r.Results))
	for _, x := range r.Results {
		out[pairKey{x.Workload, x.Mechanism}] = x.RatioBare
	}
	return out
}

// WriteCompareRuns writes two or more results side by side, one column per
// run (A, B, C, … in the order given): each workload × mechanism's ns/op
// and, in parentheses, its ratio to the same run's bare ns/op — the figure
// that compares across kernels. Rows are the union of the runs' pairs, in
// first-seen order; a run without a pair shows —.
func WriteCompareRuns(w io.Writer, names []string, runs []*Results) error {
	if len(runs) < 2 || len(names) != len(runs) {
		return fmt.Errorf("comparing: want two or more runs with a name each, got %d runs and %d names", len(runs), len(names))
	}
	for _, r := range runs[1:] {
		if r.Version != runs[0].Version {
			return fmt.Errorf("comparing version %d with version %d: %w", runs[0].Version, r.Version, ErrSchemaMismatch)
		}
	}
	var keys []pairKey
	seen := map[pairKey]bool{}
	ratios := make([]map[pairKey]float64, len(runs))
	ns := make([]map[pairKey]float64, len(runs))
	kernels := map[string]bool{}
	header := []string{"WORKLOAD", "MECHANISM"}
	right := []bool{false, false}
	for i, r := range runs {
		letter := runLetter(i)
		fmt.Fprintf(w, "%s: %s · kernel %s · %s · %s\n", letter, names[i], r.Kernel, r.Hostname, r.Time.Format("2006-01-02 15:04 MST"))
		kernels[r.Kernel] = true
		ratios[i] = ratiosToBare(r)
		ns[i] = map[pairKey]float64{}
		for _, x := range r.Results {
			k := pairKey{x.Workload, x.Mechanism}
			ns[i][k] = x.NsPerOpMedian
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
		header = append(header, letter+" NS/OP (×BARE)")
		right = append(right, true)
	}
	t := &table{header: header, right: right}
	for _, k := range keys {
		cells := []string{k.w, k.m}
		for i := range runs {
			v, ok := ns[i][k]
			if !ok {
				cells = append(cells, "—")
				continue
			}
			cells = append(cells, fmt.Sprintf("%s (%s)", formatNs(v), formatRatio(ratios[i][k])))
		}
		t.add(cells...)
	}
	if err := t.write(w); err != nil {
		return fmt.Errorf("writing comparison: %w", err)
	}
	if len(kernels) > 1 {
		_, err := fmt.Fprintln(w, kernelsDifferNote)
		return err
	}
	return nil
}

// runLetter names the i-th run: A … Z, then R27, R28, ….
func runLetter(i int) string {
	if i < 26 {
		return string(rune('A' + i))
	}
	return fmt.Sprintf("R%d", i+1)
}
