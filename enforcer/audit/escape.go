package audit

import (
	"strconv"
	"unicode/utf8"
)

// Escape writes s, whose bytes are not all UTF-8, as Go quotes a string
// (strconv.Quote) without the quotes: \xHH for a byte that is not UTF-8,
// and backslash escapes for backslashes, quotes and characters that do not
// print. JSON can only carry
// UTF-8, and a file name, a symlink target or an AF_UNIX name is any bytes:
// written with U+FFFD instead, two different names would read the same in
// the audit trail. A record lists the fields it escaped (Args.Escaped,
// Kernel.PathEscaped); Unescape gives the bytes back.
func Escape(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// Unescape returns the bytes Escape wrote as s.
func Unescape(s string) (string, error) {
	return strconv.Unquote(`"` + s + `"`)
}

// NeedsEscape reports whether s must be written with Escape: its bytes are
// not all UTF-8.
func NeedsEscape(s string) bool { return !utf8.ValidString(s) }
