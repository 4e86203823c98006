// Command vigil supervises Linux processes through seccomp user notification
// and inspects their pointer arguments. See README.md.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/vigilsec/vigil/cmd/vigil/internal/doctor"
	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/launch"
	"github.com/vigilsec/vigil/enforcer/reexec"
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
	// signal, when set, killed the supervised command: vigil then ends by
	// it too, after everything is written (dieBy).
	signal syscall.Signal
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func main() {
	// Must run before anything else: this process may be one of vigil's
	// helpers (package reexec) — the init step of a watchee, which installs
	// its filter and execs the command; an emulation worker, which runs in a
	// watchee's namespaces; or a doctor probe — and then never returns.
	reexec.Run(launch.InitRole(), emulate.WorkerRole(), doctor.HelperRole())

	err := newRootCmd().Execute()
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(os.Stderr, "vigil: %v\n", ee.err)
		}
		if ee.signal != 0 {
			dieBy(ee.signal)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintf(os.Stderr, "vigil: %v\n", err)
	os.Exit(2)
}

// survivePipeReaders keeps a supervising command alive when a reader of its
// stdout or stderr goes away (`vigil run -- make 2>&1 | head`): Go ends a
// program whose write to fd 1 or 2 raises SIGPIPE, which would end
// supervision and, through PR_SET_PDEATHSIG, the command mid-work. With the
// signal caught the write fails with EPIPE and the record is dropped. Caught,
// not ignored: an ignored SIGPIPE would stay ignored in the command after
// exec, a handler does not.
func survivePipeReaders() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
}
