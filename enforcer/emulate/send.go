package emulate

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/args"
)

// Emulated sends (issue 9, bypass 5). A send that can name its peer
// (sendto with a destination, sendmsg, sendmmsg) keeps that peer in the
// watchee's memory, which a sibling thread can rewrite between vigil's read
// and the kernel's: an allowed send is therefore never continued but
// performed by vigil on the watchee's own socket (pidfd_getfd), with the
// destination vigil vetted and the data and control messages the watchee
// passed, as sendmsg(2) would have:
//
//   - The socket is the watchee's open file description: its network
//     namespace, owner (sk_uid), cgroup, marks, options, O_NONBLOCK and
//     SO_SNDTIMEO apply unchanged.
//   - Data is read from the watchee's memory as the kernel copies it: a
//     datagram whole (EFAULT if any byte is unreadable, EMSGSIZE above
//     maxDatagram), a stream in chunks, stopping at the first fault with
//     the count sent so far.
//   - A blocking send blocks for as long as the watchee's would, off the
//     notify loop, waiting for POLLOUT and giving up when the watchee is
//     gone (the notification is no longer valid) or has a signal to handle
//     (SendCall.Interrupted: ErrInterrupted, or the partial count);
//     SO_SNDTIMEO ends it with EAGAIN or the partial count. vigil sends with MSG_NOSIGNAL and, when
//     the watchee did not ask for it, raises the SIGPIPE the kernel would
//     have raised in the calling thread, before the answer.
//   - Control messages are handled faithfully or refused: on AF_UNIX,
//     SCM_RIGHTS descriptors are taken from the watchee (pidfd_getfd) and
//     SCM_CREDENTIALS are checked as scm_check_creds checks the watchee and
//     translated to vigil's namespaces; without them vigil attaches the
//     watchee's own credentials (tgid, real uid and gid), so a receiver with
//     SO_PASSCRED sees the watchee, not vigil. On other families only
//     control messages that need no privilege pass (SOL_SOCKET timestamping
//     and SO_PRIORITY 0-6, IP_TOS/TTL/PKTINFO, IPV6_PKTINFO/HOPLIMIT/
//     TCLASS/DONTFRAG, UDP_SEGMENT); any other is refused with EPERM and a
//     log line saying which.
//   - An AF_UNIX pathname destination is resolved in the watchee's view with
//     its credentials (the caller prepares it, LookupFollow), must be a
//     socket (ECONNREFUSED) that the watchee may write (EACCES, checked as
//     the watchee), and is then reached through the held descriptor's /proc
//     magic link, so a swapped path cannot redirect the send.
//
// Known differences: non-fatal signals do not interrupt a blocking emulated
// send (SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV); SIGPIPE carries vigil as its
// sender (si_pid); descriptors in flight are charged to vigil's user, not the
// watchee's (too_many_unix_fds); a Landlock domain's scoping of abstract
// AF_UNIX sockets (Linux 6.12) judges vigil; netlink requests to the kernel
// run in vigil's context, where handlers that check the sending task alone
// (most also check the socket's opener) see vigil.

// Socket is a watchee's socket taken for an emulated send.
type Socket struct {
	// Fd is vigil's descriptor of the watchee's open file description.
	Fd int
	// Domain, Type and Protocol are SO_DOMAIN, SO_TYPE and SO_PROTOCOL.
	Domain, Type, Protocol int

	c     Caller
	pidfd int // the thread's pidfd (PIDFD_THREAD), else the process's
	// threadPidfd says pidfd names the thread.
	threadPidfd bool
}

// TakeSocket takes the watchee thread's descriptor fd with pidfd_getfd and
// identifies its socket. It keeps a pidfd of the thread for the descriptors
// of SCM_RIGHTS and for SIGPIPE. The caller must check the notification is
// still valid afterwards (ID_VALID), which proves the pidfd named the
// watchee. Errors are the watchee's answer: EBADF, ENOTSOCK, ESRCH when it
// is gone.
func TakeSocket(c Caller, fd int) (*Socket, error) {
	if fd < 0 {
		return nil, unix.EBADF
	}
	s := &Socket{Fd: -1, c: c, pidfd: -1}
	var err error
	s.pidfd, s.threadPidfd, err = OpenPidfd(c.Pid, c.Tid, 0)
	if err != nil {
		return nil, unix.ESRCH
	}
	if s.Fd, err = unix.PidfdGetfd(s.pidfd, fd, 0); err != nil {
		s.Close()
		if err == unix.EBADF {
			return nil, unix.EBADF
		}
		return nil, unix.ESRCH
	}
	if s.Domain, err = unix.GetsockoptInt(s.Fd, unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil {
		s.Close()
		if err == unix.ENOTSOCK {
			return nil, unix.ENOTSOCK
		}
		return nil, fmt.Errorf("reading the socket's domain: %w", err)
	}
	if s.Type, err = unix.GetsockoptInt(s.Fd, unix.SOL_SOCKET, unix.SO_TYPE); err == nil {
		s.Protocol, err = unix.GetsockoptInt(s.Fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("identifying the watchee's socket: %w", err)
	}
	return s, nil
}

// Close releases the socket and the pidfd. It is safe to call more than once.
func (s *Socket) Close() {
	if s == nil {
		return
	}
	for _, fd := range []*int{&s.Fd, &s.pidfd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// SendMsg is one message of an emulated send, as vigil read and vetted it.
type SendMsg struct {
	// Name is the destination as the watchee passed it (nil for none).
	Name []byte
	// Peer, when set, is the AF_UNIX pathname destination, resolved in the
	// watchee's view (PrepareAt with LookupFollow); Send reaches it through
	// its descriptor instead of Name's path and closes it.
	Peer *Prepared
	// Iov describes the data in the watchee's memory and Len its total.
	Iov []args.Iovec
	Len uint64
	// Control is the watchee's control data (msg_control), as read.
	Control []byte
	// Flags are MSG_* flags of this message only (sendmmsg's MSG_EOR).
	Flags uint32
}

// SendCall is one emulated sendto, sendmsg or sendmmsg.
type SendCall struct {
	Msgs []SendMsg
	// Flags is the call's flags argument.
	Flags uint32
	// Mmsg is, for sendmmsg, the address of the watchee's struct mmsghdr
	// array, whose msg_len fields Send fills in; 0 otherwise.
	Mmsg uint64
	// Valid reports whether the watchee still waits for this call
	// (SECCOMP_IOCTL_NOTIF_ID_VALID). Send checks it after every read of
	// the watchee's memory or /proc and while a send blocks.
	Valid func() error
	// Interrupted, when set, reports whether the watchee has a signal
	// that would have interrupted its blocked send alone; a blocking send
	// checks it while it waits (every interruptSlice) and then ends with
	// ErrInterrupted, or the bytes or messages already sent.
	Interrupted func() bool
}

// ErrInterrupted means a blocking send stopped waiting for a signal the
// watchee has to handle, before it sent anything: the kernel's own wait
// would have answered ERESTARTSYS.
var ErrInterrupted = errors.New("a signal interrupted the watchee's blocking send")

// ErrGone means the watchee stopped waiting while its send was emulated:
// there is no one to answer.
var ErrGone = errors.New("watchee no longer waits for its send")

// Limits of an emulated send.
const (
	// maxDatagram bounds one message of a non-stream socket: UDP and raw
	// IP refuse more than 64 KiB with EMSGSIZE, AF_UNIX and netlink more
	// than their send buffer, whose default ceiling (net.core.wmem_max) is
	// far below this.
	maxDatagram = 4 << 20
	// streamChunk is how much of a stream send is read and sent at a time,
	// about the kernel's own unit (TCP's 64 KiB size goal).
	streamChunk = 64 << 10
	// pollSlice bounds one wait of a blocking send, so a watchee that died
	// meanwhile is noticed.
	pollSlice = 200 * time.Millisecond
	// interruptSlice bounds it when signals are looked for (Interrupted).
	interruptSlice = 10 * time.Millisecond
)

// Send performs call on s and returns what the syscall returns: the bytes
// sent (sendto, sendmsg) or the messages sent (sendmmsg), or an errno.
// ErrGone (or another error) means nothing is to be answered or vigil
// failed; the caller then answers EPERM if the watchee still waits. Peer
// descriptors of every message are closed.
func (e *Emulator) Send(s *Socket, call *SendCall) (int64, unix.Errno, error) {
	defer func() {
		for i := range call.Msgs {
			call.Msgs[i].Peer.Close()
		}
	}()
	if call.Mmsg == 0 {
		if len(call.Msgs) != 1 {
			return 0, 0, fmt.Errorf("emulated send of %d messages without an mmsghdr array", len(call.Msgs))
		}
		n, errno, err := e.sendMsg(s, &call.Msgs[0], call.Flags, call)
		return int64(n), errno, err
	}
	sent := 0
	for i := range call.Msgs {
		m := &call.Msgs[i]
		n, errno, err := e.sendMsg(s, m, call.Flags|m.Flags, call)
		if errors.Is(err, ErrInterrupted) && sent > 0 {
			return int64(sent), 0, nil // __sys_sendmmsg: the datagrams sent
		}
		if err != nil {
			return 0, 0, err
		}
		if errno == 0 {
			// __sys_sendmmsg stores msg_len after each message; a fault
			// there ends the call like a failed send.
			if err := call.Valid(); err != nil {
				return 0, 0, ErrGone
			}
			errno = writeUint32(s.c.Tid, call.Mmsg+uint64(i)*args.MmsghdrSize+args.MmsghdrLenOffset, uint32(n))
		}
		if errno != 0 {
			if sent > 0 {
				return int64(sent), 0, nil
			}
			return 0, errno, nil
		}
		sent++
		if uint64(n) < m.Len {
			break // msg_data_left: a partial send ends sendmmsg
		}
	}
	return int64(sent), 0, nil
}

// sendMsg sends one message and returns the bytes sent or the errno.
func (e *Emulator) sendMsg(s *Socket, m *SendMsg, flags uint32, call *SendCall) (int, unix.Errno, error) {
	valid := call.Valid
	name := m.Name
	if m.Peer != nil {
		if m.Peer.Mode&unix.S_IFMT != unix.S_IFSOCK {
			return 0, unix.ECONNREFUSED, nil // unix_find_bsd
		}
		acc, err := e.do(m.Peer, &request{Op: opAccess, Mode: unix.W_OK}, objectIn(m.Peer))
		if err != nil {
			return 0, 0, fmt.Errorf("checking the watchee's write permission on its peer: %w", err)
		}
		if acc.Errno != 0 {
			return 0, acc.Errno, nil
		}
		name = unixMagicName(m.Peer.ObjectFd)
	}
	if s.Domain == unix.AF_NETLINK && len(name) >= 12 {
		if errno, err := e.netlinkDestAllowed(s, name, valid); err != nil || errno != 0 {
			return 0, errno, err
		}
	}
	ctl, fds, errno, err := e.control(s, m.Control, valid)
	defer closeAll(fds)
	if err != nil || errno != 0 {
		return 0, errno, err
	}
	// Strip what is vigil's to decide: the kernel refuses MSG_CMSG_COMPAT
	// in a native sendmsg (sendto ignores it), and SIGPIPE is raised for
	// the watchee below, never for vigil.
	flags &^= args.MsgCmsgCompat
	w, err := newSendWait(s, flags, valid, call.Interrupted)
	if err != nil {
		return 0, 0, err
	}
	if s.Type == unix.SOCK_STREAM {
		return e.sendStream(s, m, name, ctl, flags, w)
	}
	if m.Len > maxDatagram {
		return 0, unix.EMSGSIZE, nil
	}
	data, release, err := sendBuffer(int(m.Len), flags)
	if err != nil {
		return 0, 0, err
	}
	defer release()
	if m.Len > 0 {
		remote := make([]unix.RemoteIovec, len(m.Iov))
		n, rerr := args.ReadIovData(s.c.Tid, m.Iov, 0, data, remote)
		if err := valid(); err != nil {
			return 0, 0, ErrGone
		}
		if rerr != nil || n < len(data) {
			return 0, unix.EFAULT, nil // memcpy_from_msg: a datagram is all or EFAULT
		}
	}
	n, errno, err := w.send(data, name, ctl, flags)
	if err != nil {
		return 0, 0, err
	}
	if errno != 0 {
		return 0, e.sigpipe(s, errno, flags), nil
	}
	return n, 0, nil
}

// sendStream sends a stream message chunk by chunk, as tcp_sendmsg and
// unix_stream_sendmsg copy it: the destination (TCP fast open) and the
// control messages go with the first chunk only; a fault or an error after
// some bytes were sent ends the call with their count.
func (e *Emulator) sendStream(s *Socket, m *SendMsg, name, ctl []byte, flags uint32, w *sendWait) (int, unix.Errno, error) {
	size := int(min(m.Len, streamChunk))
	buf, release, err := sendBuffer(size, flags)
	if err != nil {
		return 0, 0, err
	}
	defer func() { release() }()
	remote := make([]unix.RemoteIovec, len(m.Iov))
	sent := uint64(0)
	first := true
	for first || sent < m.Len {
		if !first && flags&unix.MSG_ZEROCOPY != 0 {
			// The previous chunk's pages may still be in flight.
			release()
			release = func() {}
			nb, nr, err := sendBuffer(size, flags)
			if err != nil {
				return 0, 0, err
			}
			buf, release = nb, nr
		}
		chunk := buf[:min(m.Len-sent, uint64(len(buf)))]
		n := 0
		var rerr error
		if len(chunk) > 0 {
			n, rerr = args.ReadIovData(s.c.Tid, m.Iov, sent, chunk, remote)
		}
		if err := w.valid(); err != nil {
			return 0, 0, ErrGone
		}
		if n < len(chunk) {
			// The kernel copies a stream in units (a TCP segment, an
			// AF_UNIX skb) that fail whole: a fault ends the send with
			// what earlier units carried, EFAULT if none.
			_ = rerr
			if sent > 0 {
				return int(sent), 0, nil
			}
			return 0, unix.EFAULT, nil
		}
		f := flags
		if !first {
			f &^= unix.MSG_FASTOPEN
		}
		got, errno, err := w.send(chunk[:n], name, ctl, f)
		if errors.Is(err, ErrInterrupted) && sent > 0 {
			return int(sent), 0, nil // tcp_sendmsg: the bytes copied
		}
		if err != nil {
			return 0, 0, err
		}
		if errno != 0 {
			if sent > 0 {
				return int(sent), 0, nil
			}
			return 0, e.sigpipe(s, errno, flags), nil
		}
		sent += uint64(got)
		first, name, ctl = false, nil, nil
		if got < n && (w.nonblock || w.expired()) {
			return int(sent), 0, nil // a non-blocking or timed-out partial send
		}
	}
	return int(sent), 0, nil
}

// sendBuffer returns a buffer for n bytes of data. With MSG_ZEROCOPY the
// kernel may keep using the pages after the send returns (until the
// watchee reads the completion from the error queue), so they must never
// hold anything else: the buffer is a mapping of its own, unmapped after
// the send, which leaves the pinned pages to the kernel alone.
func sendBuffer(n int, flags uint32) ([]byte, func(), error) {
	if flags&unix.MSG_ZEROCOPY == 0 || n == 0 {
		return make([]byte, n), func() {}, nil
	}
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, nil, fmt.Errorf("mapping a zerocopy send buffer: %w", err)
	}
	return b, func() { _ = unix.Munmap(b) }, nil
}

// sigpipe raises the SIGPIPE the kernel sends the calling thread with EPIPE
// on a stream socket (sk_stream_error, unix_stream_sendmsg, SCTP), unless
// the watchee passed MSG_NOSIGNAL. It runs before the answer, as the
// kernel's signal is pending when the syscall returns.
func (e *Emulator) sigpipe(s *Socket, errno unix.Errno, flags uint32) unix.Errno {
	if errno != unix.EPIPE || flags&unix.MSG_NOSIGNAL != 0 {
		return errno
	}
	if s.Type != unix.SOCK_STREAM && (s.Type != unix.SOCK_SEQPACKET || s.Domain == unix.AF_UNIX) {
		return errno
	}
	var err error
	if s.threadPidfd {
		err = unix.PidfdSendSignal(s.pidfd, unix.SIGPIPE, nil, 0)
	} else {
		err = unix.Tgkill(s.c.Pid, s.c.Tid, unix.SIGPIPE)
	}
	if err != nil {
		e.log.Debug().Err(err).Int("tid", s.c.Tid).Msg("raising SIGPIPE for an emulated send")
	}
	return errno
}

// sendWait performs the sends of one message without ever blocking vigil
// for good: a blocking socket is sent on with MSG_DONTWAIT and waited on
// with poll, in slices, checking that the watchee still waits.
type sendWait struct {
	s           *Socket
	valid       func() error
	interrupted func() bool // nil: signals are not looked for
	nonblock    bool
	deadline    time.Time // SO_SNDTIMEO; zero for none
}

func newSendWait(s *Socket, flags uint32, valid func() error, interrupted func() bool) (*sendWait, error) {
	w := &sendWait{s: s, valid: valid, interrupted: interrupted, nonblock: flags&unix.MSG_DONTWAIT != 0}
	fl, err := unix.FcntlInt(uintptr(s.Fd), unix.F_GETFL, 0)
	if err != nil {
		return nil, fmt.Errorf("reading the socket's file flags: %w", err)
	}
	w.nonblock = w.nonblock || fl&unix.O_NONBLOCK != 0
	if !w.nonblock {
		tv, err := unix.GetsockoptTimeval(s.Fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO)
		if err == nil && (tv.Sec != 0 || tv.Usec != 0) {
			w.deadline = time.Now().Add(time.Duration(tv.Nano()))
		}
	}
	return w, nil
}

func (w *sendWait) expired() bool { return !w.deadline.IsZero() && !time.Now().Before(w.deadline) }

// send sends data once the socket takes it: EAGAIN is the answer for a
// non-blocking socket, a wait for a blocking one. ErrGone means the watchee
// stopped waiting.
func (w *sendWait) send(data, name, ctl []byte, flags uint32) (int, unix.Errno, error) {
	backoff := time.Millisecond
	fastopen := flags&unix.MSG_FASTOPEN != 0
	for {
		n, errno := rawSendmsg(w.s.Fd, data, name, ctl, flags|unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
		if fastopen && errno == unix.EINPROGRESS && !w.nonblock {
			// The SYN is out without data (no cookie yet): a blocking
			// watchee waits for the handshake and then sends all of it.
			if err := w.wait(&backoff); err != nil {
				return 0, 0, err
			}
			if w.expired() {
				return 0, unix.EAGAIN, nil
			}
			flags &^= unix.MSG_FASTOPEN
			name, fastopen = nil, false
			continue
		}
		if errno != unix.EAGAIN || w.nonblock {
			return n, errno, nil
		}
		if w.expired() {
			return 0, unix.EAGAIN, nil
		}
		if err := w.wait(&backoff); err != nil {
			return 0, 0, err
		}
	}
}

// wait waits, at most one slice, for the socket to take more; ErrGone when
// the watchee stopped waiting meanwhile, ErrInterrupted when it has a
// signal to handle.
func (w *sendWait) wait(backoff *time.Duration) error {
	slice := pollSlice
	if w.interrupted != nil {
		slice = interruptSlice
	}
	if !w.deadline.IsZero() {
		slice = min(slice, max(time.Until(w.deadline), 0))
	}
	start := time.Now()
	fds := []unix.PollFd{{Fd: int32(w.s.Fd), Events: unix.POLLOUT}}
	n, err := unix.Poll(fds, int(slice/time.Millisecond)+1)
	if w.valid() != nil {
		return ErrGone
	}
	if w.interrupted != nil && w.interrupted() {
		return ErrInterrupted
	}
	if err == nil && n > 0 && time.Since(start) < time.Millisecond {
		// POLLOUT at once but the send still said EAGAIN: an unconnected
		// AF_UNIX datagram socket is writable while its peer's queue is
		// full. Back off instead of spinning.
		time.Sleep(*backoff)
		*backoff = min(*backoff*2, 64*time.Millisecond)
	}
	return nil
}

// unixMagicName is a sockaddr_un that reaches the socket file held by fd
// in vigil's own table: kern_path follows the magic link to that inode.
func unixMagicName(fd int) []byte {
	p := "/proc/self/fd/" + strconv.Itoa(fd)
	b := make([]byte, 2, 2+len(p)+1)
	b[0], b[1] = byte(unix.AF_UNIX), byte(unix.AF_UNIX>>8)
	b = append(b, p...)
	return append(b, 0)
}
