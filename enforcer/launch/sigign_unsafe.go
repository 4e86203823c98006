package launch

// sigign.c records, in an ELF constructor that runs before the Go runtime
// changes them, the signals vigil was started with ignored and blocked.

/*
#cgo CFLAGS: -O2 -Wall
#include <stdint.h>
extern uint64_t vigil_inherited_sigign, vigil_inherited_sigblk;
*/
import "C"

// inheritedSignals returns the signals vigil's parent left ignored and
// blocked, bit N-1 for signal N.
func inheritedSignals() (ignored, blocked uint64) {
	return uint64(C.vigil_inherited_sigign), uint64(C.vigil_inherited_sigblk)
}
