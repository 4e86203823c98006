package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// formatNs renders nanoseconds with a unit and three significant digits:
// "98.1 ns", "15.2 µs", "1.23 ms".
func formatNs(ns float64) string {
	units := []struct {
		div  float64
		name string
	}{{1e9, "s"}, {1e6, "ms"}, {1e3, "µs"}, {1, "ns"}}
	for _, u := range units {
		if abs(ns) >= u.div || u.div == 1 {
			return sig3(ns/u.div) + " " + u.name
		}
	}
	return "0 ns"
}

// formatKiB renders KiB as "812 KiB" or "23.4 MiB".
func formatKiB(k int) string {
	if k >= 1024 {
		return sig3(float64(k)/1024) + " MiB"
	}
	return strconv.Itoa(k) + " KiB"
}

// formatCount renders a rate with three significant digits: "845",
// "71.2k", "1.20M"; "—" when it is unknown (0).
func formatCount(x float64) string {
	switch {
	case x <= 0:
		return "—"
	case x >= 1e6:
		return sig3(x/1e6) + "M"
	case x >= 1e3:
		return sig3(x/1e3) + "k"
	}
	return sig3(x)
}

func sig3(x float64) string {
	switch a := abs(x); {
	case a >= 100:
		return fmt.Sprintf("%.0f", x)
	case a >= 10:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// formatRatio renders a ratio as "1.23×", or "—" when it is unknown (0).
func formatRatio(r float64) string {
	if r == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", r)
}

// table is a text table whose columns are left-aligned unless marked right.
type table struct {
	header []string
	right  []bool
	rows   [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) error {
	widths := make([]int, len(t.header))
	for _, r := range append([][]string{t.header}, t.rows...) {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, r := range append([][]string{t.header}, t.rows...) {
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if t.right[i] {
				b.WriteString(pad + c)
			} else if i < len(r)-1 {
				b.WriteString(c + pad)
			} else {
				b.WriteString(c)
			}
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
