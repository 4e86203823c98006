package emulate

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// PrepareSocket fetches the watchee's socket sockfd for Connect, with
// pidfd_getfd: vigil then connects the watchee's own open file description.
// Like every preparation it must precede the caller's ID_VALID check, which
// proves the descriptor came from the watchee. Errors are the watchee's
// answer (EBADF, ENOTSOCK), ESRCH when it is gone, or ErrUnsupported for
// families other than AF_INET and AF_INET6 (see Connect).
func (e *Emulator) PrepareSocket(c Caller, sockfd int) (*Prepared, error) {
	p := &Prepared{e: e, c: c, lookup: lookupSocket, ParentFd: -1, ObjectFd: -1, tidfd: -1, root: -1, openFd: -1}
	if err := e.takeSocket(p, sockfd); err != nil {
		p.Close()
		return nil, err
	}
	if p.Domain != unix.AF_INET && p.Domain != unix.AF_INET6 {
		p.Close()
		return nil, fmt.Errorf("%w: connect on a socket of family %d", ErrUnsupported, p.Domain)
	}
	return p, nil
}

// takeSocket fetches the watchee's socket sockfd into p (ObjectFd, Domain).
// Errors are the watchee's answer (EBADF, ENOTSOCK), ESRCH when it is gone,
// or why SO_DOMAIN could not be read. A socket's inode identifies nothing a
// connect or bind needs, so no fstat.
func (e *Emulator) takeSocket(p *Prepared, sockfd int) error {
	fd, err := e.getFd(p.c, sockfd)
	if err != nil {
		return err
	}
	p.ObjectFd = fd
	if p.Domain, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil {
		if err == unix.ENOTSOCK {
			return unix.ENOTSOCK
		}
		return fmt.Errorf("reading the socket's domain: %w", err)
	}
	p.Exists, p.Mode = true, unix.S_IFSOCK
	p.st.Mode = p.Mode
	return nil
}

// Connect performs connect(2) on the socket p holds (PrepareSocket) with
// addr, the sockaddr bytes vigil read and vetted: the kernel never reads the
// watchee's memory again. Because the socket is the watchee's own open file
// description, O_NONBLOCK (EINPROGRESS, EALREADY, EISCONN), SO_SNDTIMEO, the
// socket's network namespace, cgroup and creator credentials all apply as
// without vigil; TCP and UDP connect consult no caller credentials.
//
// Only AF_INET and AF_INET6 sockets are emulated. An AF_UNIX connect records
// the connecting process as the peer (SO_PEERCRED, SO_PEERPIDFD): emulated,
// the server would see vigil or a worker — root — instead of the watchee.
// Allow those with a peer binding instead.
//
// A blocking connect blocks the calling goroutine for as long as the
// watchee's would (until the handshake completes or times out): call it off
// the notify loop and answer when it returns. A non-fatal signal to the
// watchee does not interrupt it: with SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
// the watchee reacts only to fatal signals while vigil works on its call.
func (e *Emulator) Connect(p *Prepared, addr []byte) (Result, error) {
	if err := p.check(lookupSocket); err != nil {
		return errnoResult(0), fmt.Errorf("connect: %w", err)
	}
	return errnoResult(rawConnect(p.ObjectFd, addr)), nil
}
