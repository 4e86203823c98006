package emulate

// The worker joins the watchee's namespaces in nsenter.c, an ELF constructor
// that runs before the Go runtime starts threads (see that file for why).
// cgo compiles it into every binary that imports this package; it does nothing
// unless argv[0] is the worker's, reexec.Arg0(workerRole).

/*
#cgo CFLAGS: -O2 -Wall
*/
import "C"
