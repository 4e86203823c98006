package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Position is a place in a policy file. Line and Col are 1-based; Col is 0
// when only the line is known (the YAML parser reports syntax errors by line
// only).
type Position struct {
	File string
	Line int
	Col  int
}

// String formats p as "file:line:col", the form editors and `vigil policy
// check` users expect, dropping the parts that are unknown.
func (p Position) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteByte(':')
	}
	fmt.Fprintf(&b, "%d", p.Line)
	if p.Col > 0 {
		fmt.Fprintf(&b, ":%d", p.Col)
	}
	return b.String()
}

func comparePos(a, b Position) int {
	return cmp.Or(
		cmp.Compare(a.File, b.File),
		cmp.Compare(a.Line, b.Line),
		cmp.Compare(a.Col, b.Col),
	)
}

// Error is one problem found in a policy, at the node that caused it.
type Error struct {
	Pos Position
	Msg string
}

// Error returns "file:line:col: msg".
func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// ErrorList is every problem Parse found, sorted by position, so that one run
// of `vigil policy check` shows them all instead of one per edit.
type ErrorList []*Error

// Error returns one error per line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap lets errors.As find the individual *Error values.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// sort orders the list by position and drops exact duplicates, which arise
// when a YAML alias makes the same bad node reachable twice.
func (l ErrorList) sort() ErrorList {
	slices.SortStableFunc(l, func(a, b *Error) int {
		return cmp.Or(comparePos(a.Pos, b.Pos), cmp.Compare(a.Msg, b.Msg))
	})
	return slices.CompactFunc(l, func(a, b *Error) bool {
		return a.Pos == b.Pos && a.Msg == b.Msg
	})
}
