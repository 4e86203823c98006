package bench

import (
	"math"
	"slices"
)

// median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// summarize turns per-repetition times (ns) of runs with n iterations and
// with none into a Result: each repetition's ns/op subtracts the median
// start-up time, so the median ns/op is (median full − median zero) / n
// exactly as scripts/bench-open.sh computes it, and min/max show the spread
// of the repetitions.
func summarize(full, zeros []float64, n int) Result {
	z := median(zeros)
	per := make([]float64, len(full))
	for i, f := range full {
		per[i] = (f - z) / float64(n)
	}
	return Result{
		Iterations:      n,
		Reps:            len(full),
		NsPerOpMedian:   round1(median(per)),
		NsMin:           round1(slices.Min(per)),
		NsMax:           round1(slices.Max(per)),
		StartupMsMedian: round1(z / 1e6),
	}
}

// round1 keeps one decimal: more would be noise, and it keeps the JSON short.
func round1(x float64) float64 { return math.Round(x*10) / 10 }
