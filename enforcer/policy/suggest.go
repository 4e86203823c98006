package policy

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

// suggest returns ` (did you mean "x"?)` for the candidate closest to s, or
// "" when none is close enough to be a plausible typo. Only error paths call
// it, so it favours simplicity over speed.
func suggest(s string, candidates []string) string {
	best, bestD := "", 0
	limit := max(1, min(3, len(s)/3))
	for _, c := range candidates {
		if diff := len(c) - len(s); diff > limit || -diff > limit {
			continue // cannot be within limit edits
		}
		d := editDistance(strings.ToLower(s), strings.ToLower(c))
		if d <= limit && (best == "" || d < bestD) {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance with adjacent transpositions
// ("opne" is one edit from "open").
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30 // not a typo of anything we know; avoid quadratic work
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// syscallNames lists every syscall name sysinfo knows, for suggestions.
var syscallNames = sync.OnceValue(func() []string {
	var out []string
	// x86_64 numbers stop below 1024 (the x32 range starts at 512 but
	// sysinfo has no x32 names); the scan is only for suggestions.
	for nr := 0; nr < 1024; nr++ {
		if n := sysinfo.Name(nr); n != "" {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
})

var errnoNames = sync.OnceValue(func() []string {
	out := make([]string, 0, len(errnoByName))
	for n := range errnoByName {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
})

// quote formats s for a message, clipped so that a huge scalar cannot turn
// one error into a megabyte of output.
func quote(s string) string { return fmt.Sprintf("%q", clip(s)) }

func clip(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}
