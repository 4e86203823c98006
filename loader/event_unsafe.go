package loader

import "unsafe"

// unsafeString returns a string sharing b's memory. ReadEvents uses it so
// that decoding a record allocates nothing; the string is valid only while
// b is not reused, i.e. during the callback (Event.Clone copies it out).
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
