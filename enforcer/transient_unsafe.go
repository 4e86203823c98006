package enforcer

import "unsafe"

// transient returns b as a string without copying. The string is valid only
// as long as b's bytes are not overwritten: decode uses it for the path
// arguments it reads into the receiver's buffers, which stay untouched until
// the next notification; a record that outlives the decision is detached
// first (callView.detach).
func transient(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
