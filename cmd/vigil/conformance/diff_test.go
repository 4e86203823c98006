package conformance_test

import (
	"fmt"
	"strings"
)

// lineDiff returns a diff of two texts, "-" for lines only in want and "+"
// for lines only in got, with up to two lines of context; "" when equal.
func lineDiff(want, got string) string {
	if want == got {
		return ""
	}
	a, b := splitLines(want), splitLines(got)
	const max = 3000
	if len(a) > max || len(b) > max {
		i := 0
		for i < len(a) && i < len(b) && a[i] == b[i] {
			i++
		}
		return fmt.Sprintf("(long outputs: %d and %d lines; first difference at line %d)\n- %s\n+ %s\n",
			len(a), len(b), i+1, at(a, i), at(b, i))
	}
	// Longest common subsequence, then walk it.
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max2(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		kind byte
		text string
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, op{' ', a[i]})
			i++
			j++
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			ops = append(ops, op{'+', b[j]})
			j++
		default:
			ops = append(ops, op{'-', a[i]})
			i++
		}
	}
	var sb strings.Builder
	changed := func(k int) bool { return k >= 0 && k < len(ops) && ops[k].kind != ' ' }
	skipped := false
	for k, o := range ops {
		near := false
		for d := -2; d <= 2; d++ {
			near = near || changed(k+d)
		}
		if !near {
			skipped = true
			continue
		}
		if skipped && sb.Len() > 0 {
			sb.WriteString("...\n")
		}
		skipped = false
		fmt.Fprintf(&sb, "%c %s\n", o.kind, o.text)
	}
	return sb.String()
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func at(l []string, i int) string {
	if i < len(l) {
		return l[i]
	}
	return "(end)"
}

func max2(a, b int) int {
	if a > b {
		return a
	}
	return b
}
