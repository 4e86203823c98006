package launch

// inherited.c records, in an ELF constructor that runs before the Go runtime
// changes them, the signals vigil was started with ignored and blocked and
// which of its standard descriptors were closed.

/*
#cgo CFLAGS: -O2 -Wall
#include <stdint.h>
extern uint64_t vigil_inherited_sigign, vigil_inherited_sigblk;
extern uint32_t vigil_inherited_closed;
*/
import "C"

// inheritedSignals returns the signals vigil's parent left ignored and
// blocked, bit N-1 for signal N.
func inheritedSignals() (ignored, blocked uint64) {
	return uint64(C.vigil_inherited_sigign), uint64(C.vigil_inherited_sigblk)
}

// inheritedClosed returns which of descriptors 0, 1 and 2 vigil's parent
// left closed, bit N for descriptor N.
func inheritedClosed() uint32 {
	return uint32(C.vigil_inherited_closed)
}
