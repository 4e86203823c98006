package enforcer

import (
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/verdict"
)

// outcomeKind says how a decided notification is answered.
type outcomeKind uint8

//go:generate go tool -modfile=../scripts/lint/go.mod stringer -type=outcomeKind -trimprefix=out

const (
	// outDeny answers -errno: the policy's denial, vigil's refusal, or the
	// kernel's own errno for arguments vigil could not vet.
	outDeny outcomeKind = iota
	// outKill kills the caller's thread group.
	outKill
	// outContinue lets the kernel run the call under the outcome's grant;
	// a bound grant's record waits for the kernel's confirmation.
	outContinue
	// outPassOn continues a call trapped only for vigil's own bookkeeping
	// (root and mount tracking): the policy has no say and no record is
	// written.
	outPassOn
	// outReturn answers with the result of the call vigil performed: val,
	// or -errno when errno is set.
	outReturn
	// outAnswered: vigil performed the call and ADDFD with SEND already
	// answered it (val is the descriptor the watchee got).
	outAnswered
	// outDeferred: vigil performs the call off the notify loop (it may
	// block: a connect, a FIFO open); the deferred function's goroutine
	// answers and records it.
	outDeferred
)

// outcome is a decision about to be carried out.
type outcome struct {
	kind  outcomeKind
	dec   policy.Decision
	grant verdict.Grant
	errno unix.Errno
	val   int64
	// performed: vigil carried the call out (its effect happened), so a
	// restart after a withdrawn answer must not repeat it; keptFd is the
	// file an emulated open made whose ADDFD found the watchee gone.
	performed bool
	keptFd    int
	keptFlags uint32
	// kernels: an outDeny with the kernel's own errno for arguments vigil
	// could not vet (a missing file, a bad pointer); no policy refused it.
	kernels bool
	// deferred performs the call (outDeferred) and reports its result, and
	// whether it answered the call itself (ADDFD).
	deferred func() (val int64, errno unix.Errno, answered bool)
}

// emulated reports whether vigil performed the call (the record says so).
func (o *outcome) emulated() bool {
	return o.kind == outReturn || o.kind == outAnswered || o.kind == outDeferred
}

// deny answers -e under decision d.
func deny(d policy.Decision, e unix.Errno) outcome {
	if e == 0 {
		e = unix.EPERM
	}
	return outcome{kind: outDeny, dec: d, errno: e}
}

// refusedBy is a denial decided before the policy was consulted.
func refusedBy(e unix.Errno) outcome {
	return deny(policy.Decision{Action: policy.ActionDeny}, e)
}

// continueUnder lets the kernel run the call under grant g.
func continueUnder(d policy.Decision, g verdict.Grant) outcome {
	return outcome{kind: outContinue, dec: d, grant: g}
}

// returned answers the result of a call vigil performed: val, or -errno.
func returned(d policy.Decision, val int64, errno unix.Errno) outcome {
	return outcome{kind: outReturn, dec: d, val: val, errno: errno}
}

// performedResult answers the result of a call whose effect happened, so
// that a restart of it gets this result instead of a second effect.
func performedResult(d policy.Decision, val int64, errno unix.Errno) outcome {
	o := returned(d, val, errno)
	o.performed, o.keptFd = true, -1
	return o
}

// deferredCall performs the call off the notify loop.
func deferredCall(d policy.Decision, f func() (int64, unix.Errno, bool)) outcome {
	return outcome{kind: outDeferred, dec: d, deferred: f}
}

// answeredWith records an ADDFD that answered the call with fd.
func answeredWith(d policy.Decision, fd int) outcome {
	return outcome{kind: outAnswered, dec: d, val: int64(fd)}
}

// refuse is the outcome of an allowed call vigil cannot carry out safely:
// the rule that allowed it stays in the record, with why it was refused.
func refuse(c *call, d policy.Decision, why string) outcome {
	c.reason = why
	return deny(d, unix.EPERM)
}
