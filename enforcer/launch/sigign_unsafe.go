package launch

// sigign.c records, in an ELF constructor that runs before the Go runtime
// replaces the dispositions, the signals vigil was started with ignored.

/*
#cgo CFLAGS: -O2 -Wall
#include <stdint.h>
extern uint64_t vigil_inherited_sigign;
*/
import "C"

// inheritedIgnored returns the signals vigil's parent left ignored, bit N-1
// for signal N.
func inheritedIgnored() uint64 { return uint64(C.vigil_inherited_sigign) }
