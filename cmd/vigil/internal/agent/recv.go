package agent

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// maxFds bounds the descriptors one handoff may carry (runc and crun send
// one). More make the kernel truncate the control data (MSG_CTRUNC); it
// releases the excess itself, and the handoff is refused.
const maxFds = 16

// received is what one connection delivered before its message was
// complete.
type received struct {
	payload []byte // the first JSON value
	fds     []int  // every fd that arrived with it, in order
	// trailing says bytes other than whitespace followed the value: a
	// second message in the same read.
	trailing bool
}

// receive reads one handoff from c; the caller sets c's read deadline. The
// fds it returns are the caller's; on error it has closed all it received.
// Every recvmsg uses MSG_CMSG_CLOEXEC so that no fd of a half-read handoff
// can leak into a process vigil starts meanwhile.
func receive(c *net.UnixConn, max int) (_ *received, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("reaching the connection's fd: %w", err)
	}
	var fds []int
	defer func() {
		if err != nil {
			closeFds(fds)
		}
	}()
	buf := make([]byte, 0, 4096)
	chunk := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(maxFds*4))
	for {
		want := min(len(chunk), max+1-len(buf))
		n, got, ctrunc, err := recvOnce(rc, chunk[:want], oob)
		fds = append(fds, got...)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if len(buf) == 0 {
					return nil, fmt.Errorf("runtime connected but sent nothing before the deadline: %w", err)
				}
				return nil, fmt.Errorf("%w: %d bytes, no complete JSON object before the deadline: %w", ErrTruncated, len(buf), err)
			}
			return nil, fmt.Errorf("receiving handoff: %w", err)
		}
		if ctrunc {
			return nil, fmt.Errorf("%w: more than %d descriptors attached (control data truncated)", ErrFds, maxFds)
		}
		if n == 0 {
			if len(buf) == 0 {
				return nil, fmt.Errorf("%w: runtime closed the connection without sending anything", ErrTruncated)
			}
			return nil, fmt.Errorf("%w: connection closed after %d bytes of incomplete JSON", ErrTruncated, len(buf))
		}
		buf = append(buf, chunk[:n]...)
		end, ferr := Frame(buf)
		switch {
		case ferr == nil:
			return &received{payload: buf[:end], fds: fds, trailing: Trailing(buf, end)}, nil
		case !errors.Is(ferr, ErrIncomplete):
			return nil, ferr
		case len(buf) > max:
			return nil, fmt.Errorf("%w: more than %d bytes without a complete JSON object", ErrTooLarge, max)
		}
	}
}

// recvOnce does one recvmsg through the poller, so a stalled peer costs a
// parked goroutine and not a thread, and the read deadline applies.
func recvOnce(rc interface {
	Read(func(uintptr) bool) error
}, p, oob []byte) (n int, fds []int, ctrunc bool, err error) {
	var oobn, flags int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), p, oob, unix.MSG_CMSG_CLOEXEC|unix.MSG_DONTWAIT)
			if rerr != unix.EINTR {
				return rerr != unix.EAGAIN
			}
		}
	})
	if err == nil {
		err = rerr
	}
	if oobn > 0 {
		// Collect the fds even on error: they are ours to close.
		fds = parseRights(oob[:oobn])
	}
	return n, fds, flags&unix.MSG_CTRUNC != 0, err
}

// parseRights returns every fd in SCM_RIGHTS messages. Other control
// messages (credentials, if a future kernel sends them) are ignored.
func parseRights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for i := range msgs {
		if msgs[i].Header.Level != unix.SOL_SOCKET || msgs[i].Header.Type != unix.SCM_RIGHTS {
			continue
		}
		got, err := unix.ParseUnixRights(&msgs[i])
		if err == nil {
			fds = append(fds, got...)
		}
	}
	return fds
}

func closeFds(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// peerCred returns the connecting process's credentials, taken by the
// kernel at connect(2).
func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("reaching the connection's fd: %w", err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, fmt.Errorf("reaching the connection's fd: %w", err)
	}
	if cerr != nil {
		return nil, fmt.Errorf("reading SO_PEERCRED: %w", cerr)
	}
	return cred, nil
}

// seccompNotifyLink is what /proc/self/fd/N reads for a seccomp listener
// (kernel/seccomp.c: anon_inode_getfile("seccomp notify", ...)).
const seccompNotifyLink = "anon_inode:seccomp notify"

// isSeccompListener checks that fd really is a seccomp user-notification
// listener before vigil runs ioctls on it: a runtime (or anything root runs)
// could name any fd "seccompFd".
func isSeccompListener(fd int) error {
	target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return fmt.Errorf("inspecting the received seccompFd: %w", err)
	}
	if target != seccompNotifyLink {
		return fmt.Errorf("%w: the fd named %q is %s, not a seccomp listener", ErrFds, "seccompFd", quoteClip(target))
	}
	return nil
}
