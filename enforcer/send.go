package enforcer

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/args"
	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/resolve"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
	"github.com/vigilsec/vigil/enforcer/verdict"
)

// Address rules hold for every way a socket reaches a peer (issue 9, bypass
// 5): connect, TCP fast open (sendto/sendmsg with MSG_FASTOPEN) and
// datagrams sent with a destination. A policy whose connect rules depend on
// the address therefore also governs the sends that can carry one, with
// connect's rules, unless it names those syscalls itself:
//
//   - sendto is trapped only with a destination (the filter tests the
//     register); without one it goes to the connected peer connect vetted.
//   - sendmsg and sendmmsg keep the destination in memory (msg_name), so
//     they are trapped whole, and no allowed one is ever continued: a sibling
//     can flip msg_name from NULL to a denied address after vigil read it.
//     vigil performs the send itself on the watchee's socket (package
//     emulate, Send), from its own copy of the destination.
//
// The destination is read as the socket's protocol reads it: a stream
// socket uses it only for TCP fast open, an AF_UNIX stream or seqpacket
// socket never; an AF_UNSPEC address on an IP datagram or raw socket is the
// socket's own family (udp_sendmsg and raw_sendmsg treat it as AF_INET); an
// AF_UNIX pathname is resolved in the watchee's view, so policy matches the
// socket file, whatever the spelling. An address the protocol would refuse
// names no peer; the emulated send then gets the kernel's own error.

// sendKind says which send a syscall is.
type sendKind uint8

const (
	sendNone sendKind = iota
	sendTo
	sendMsg
	sendMmsg
)

var (
	nrSendto, _   = sysinfo.Number("sendto")
	nrSendmsg, _  = sysinfo.Number("sendmsg")
	nrSendmmsg, _ = sysinfo.Number("sendmmsg")
	nrConnect, _  = sysinfo.Number("connect")
)

// sendEvalNr returns the syscall number whose rules decide a send, and false
// when the send is none of vigil's business here: not governed, or named by
// the policy without a content-dependent rule (the ordinary path then
// continues it, as the policy asks).
func sendEvalNr(p *policy.Policy, nr int) (int, bool) {
	if p.Names(nr) {
		return nr, p.ContentDependent(nr)
	}
	if p.ContentDependent(nrConnect) {
		return nrConnect, true
	}
	return 0, false
}

// governedSends returns the sends a policy traps only because its connect
// rules govern them: sendmsg and sendmmsg whole, sendto with a destination.
func governedSends(p *policy.Policy) (whole, addrOnly []int) {
	if !p.ContentDependent(nrConnect) {
		return nil, nil
	}
	for _, nr := range []int{nrSendmsg, nrSendmmsg} {
		if !p.Names(nr) {
			whole = append(whole, nr)
		}
	}
	if !p.Names(nrSendto) {
		addrOnly = append(addrOnly, nrSendto)
	}
	return whole, addrOnly
}

// optmemMax is net.core.optmem_max, the largest msg_controllen sock_kmalloc
// takes; read once (the watchee's network namespace may differ, rarely).
var optmemMax = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/sys/net/core/optmem_max")
	if err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && v > 0 {
			return v
		}
	}
	return 131072 // the default since Linux 6.9
})

// ctlOnStack is the control size ____sys_sendmsg copies into its on-stack
// buffer without sock_kmalloc (sizeof(struct cmsghdr) + 20).
const ctlOnStack = args.CmsghdrSize + 20

// sendCall is a send being decided.
type sendCall struct {
	sock *emulate.Socket
	msgs []emulate.SendMsg
}

func (sc *sendCall) close() {
	if sc.sock != nil {
		sc.sock.Close()
	}
	for i := range sc.msgs {
		sc.msgs[i].Peer.Close()
	}
}

// decideSend decides a trapped send; handled is false for sends the policy
// names without a content-dependent rule (decide goes on as usual).
func (s *receiver) decideSend(l notify.Answerer, n *notify.Notif, c *call) (o outcome, handled bool) {
	evalNr, ok := sendEvalNr(s.pol, c.pc.Nr)
	if !ok {
		return outcome{}, false
	}
	c.pc.Nr = evalNr
	kind := c.h.send
	a := &n.Data.Args
	if alen := int32(a[5]); kind == sendTo && (a[4] == 0 || alen <= 0 || alen > args.SockaddrStorageSize) {
		// No destination, or one move_addr_to_kernel refuses (EINVAL) or
		// copies nothing: the kernel reads no address bytes, so
		// continuing cannot be raced into another peer.
		return s.sendWithoutPeer(l, n, c), true
	}
	caller := s.caller(c)
	var sc sendCall
	var d policy.Decision
	flags, errno := s.readSend(n, kind, caller, &sc)
	if errno == 0 {
		d, errno = s.evaluateSend(caller, c, &sc, flags, kind)
	}
	if errno != 0 {
		sc.close()
		c.err = errno
		if err := l.Valid(n.ID); err != nil {
			errno = unix.ESRCH
		}
		return refusedBy(errno), true
	}
	o = s.carryOutSend(l, n, d, kind, flags, &sc, caller)
	if o.kind != outDeferred {
		sc.close()
	}
	return o, true
}

// readSend takes the watchee's socket and reads the messages a send names,
// in the kernel's order: for sendto, import_ubuf (EFAULT), the fd, then the
// address; for sendmsg and sendmmsg, the flags, the fd, then each header.
// An errno is the kernel's answer for what could not be read.
func (s *receiver) readSend(n *notify.Notif, kind sendKind, caller emulate.Caller, sc *sendCall) (flags uint32, errno unix.Errno) {
	a := &n.Data.Args
	tid := caller.Tid
	if kind == sendTo {
		flags = uint32(a[3])
		iov, err := args.ImportUbuf(a[1], a[2])
		if err != nil {
			return flags, errnoFor(err)
		}
		if sc.sock, err = emulate.TakeSocket(caller, int(int32(a[0]))); err != nil {
			return flags, errnoFor(err)
		}
		m, err := args.ReadSockaddr(tid, a[4], a[5], s.scratch.Sockaddr[:])
		if err != nil {
			return flags, errnoFor(err)
		}
		sc.msgs = []emulate.SendMsg{{Name: append([]byte(nil), s.scratch.Sockaddr[:m]...), Iov: []args.Iovec{iov}, Len: iov.Len}}
		return flags, 0
	}
	flags = uint32(a[2])
	if kind == sendMmsg {
		flags = uint32(a[3])
	}
	if args.SendFlagsInvalid(flags) {
		return flags, unix.EINVAL
	}
	var err error
	if sc.sock, err = emulate.TakeSocket(caller, int(int32(a[0]))); err != nil {
		return flags, errnoFor(err)
	}
	if kind == sendMsg {
		m, errno := s.readSendMsg(tid, a[1])
		sc.msgs = []emulate.SendMsg{m}
		return flags, errno
	}
	vlen := min(uint32(a[2]), args.UioMaxIov)
	for i := uint32(0); i < vlen; i++ {
		m, errno := s.readSendMsg(tid, a[1]+uint64(i)*args.MmsghdrSize)
		if errno != 0 {
			if i == 0 {
				return flags, errno
			}
			break // the kernel sends the entries before and returns their count
		}
		m.Flags &= unix.MSG_EOR
		sc.msgs = append(sc.msgs, m)
	}
	return flags, 0
}

// carryOutSend carries out the verdict on a send: an allowed one is
// performed by vigil from its own copy of the destination, off the notify
// loop (a send may block); the naive mode continues it.
func (s *receiver) carryOutSend(l notify.Answerer, n *notify.Notif, d policy.Decision, kind sendKind, flags uint32, sc *sendCall, caller emulate.Caller) outcome {
	switch d.Action {
	case policy.ActionAllow, policy.ActionLog:
	default:
		return s.finish(l, n, d, verdict.Grant{})
	}
	if s.cfg.Unverified {
		// The naive mode continues the call: the kernel reads msg_name
		// again, which a racing thread may have changed.
		return s.finish(l, n, d, verdict.Unverified(n))
	}
	if s.cfg.Emulator == nil {
		s.log.Debug().Str(audit.FieldSyscall, sysinfo.Name(int(n.Data.Nr))).Uint64(audit.FieldNotifID, n.ID).
			Msg("denying: a send that may name its peer is allowed only when vigil can perform it, and the emulation engine is not running")
		return deny(d, unix.EPERM)
	}
	// The socket, the destination and /proc were read while the call was
	// pending: one ID_VALID proves they were the watchee's.
	if err := l.Valid(n.ID); err != nil {
		return deny(d, unix.ESRCH)
	}
	id := n.ID // n is the loop's, reused for the next notification
	call := &emulate.SendCall{Msgs: sc.msgs, Flags: flags, Valid: func() error { return l.Valid(id) }}
	if kind == sendMmsg {
		call.Mmsg = n.Data.Args[1]
	}
	em, sock, log := s.cfg.Emulator, sc.sock, s.log
	tgid, tid := caller.Pid, caller.Tid
	return deferredCall(d, func() (int64, unix.Errno, bool) {
		defer sock.Close()
		// A send that blocks answers a signal the watchee has to handle
		// as the kernel's wait would (whileWaiting).
		if sig := openThreadSignals(tgid, tid); sig != nil {
			defer sig.close()
			call.Interrupted = sig.interrupt
		}
		val, errno, err := em.Send(sock, call)
		if errors.Is(err, emulate.ErrInterrupted) {
			return 0, errRestartSys, false
		}
		if err != nil {
			if !errors.Is(err, emulate.ErrGone) {
				log.Error().Err(err).Msg("denying: emulated send failed")
			}
			return 0, unix.EPERM, false
		}
		return val, errno, false
	})
}

// sendWithoutPeer decides a sendto that names no peer (or names one the
// kernel refuses before reading it): governed, it is allowed as a send to
// the connected peer; named, the policy's rules decide without an address.
func (s *receiver) sendWithoutPeer(l notify.Answerer, n *notify.Notif, c *call) outcome {
	if c.pc.Nr == nrConnect {
		g, _ := verdict.ContentIndependent(s.pol, n)
		return s.finish(l, n, policy.Decision{Action: policy.ActionAllow}, g)
	}
	// The verdict rests on registers alone (the address pointer and
	// length): no memory the kernel reads again decided it.
	return s.finish(l, n, s.pol.Evaluate(&c.pc), verdict.Unverified(n))
}

// readSendMsg reads one struct user_msghdr at addr and what it points to,
// in the kernel's order, into a message to send: the name (vigil's copy),
// the iovecs and the control data. The data itself is read when it is sent.
func (s *receiver) readSendMsg(tid int, addr uint64) (emulate.SendMsg, unix.Errno) {
	mh, err := args.ReadMsghdr(tid, addr, s.scratch.Struct[:])
	if err != nil {
		return emulate.SendMsg{}, errnoFor(err)
	}
	var m emulate.SendMsg
	if mh.HasName() {
		if _, err := args.ReadBytes(tid, mh.Name, mh.Namelen, s.scratch.Sockaddr[:]); err != nil {
			return m, errnoFor(err)
		}
		m.Name = append([]byte(nil), s.scratch.Sockaddr[:mh.Namelen]...)
	}
	if mh.Iovlen > args.UioMaxIov {
		return m, unix.EMSGSIZE
	}
	raw := make([]byte, int(mh.Iovlen)*args.IovecSize)
	m.Iov = make([]args.Iovec, mh.Iovlen)
	k, total, err := args.ReadIovecs(tid, mh.Iov, mh.Iovlen, raw, m.Iov)
	if err != nil {
		return m, errnoFor(err)
	}
	m.Iov, m.Len = m.Iov[:k], total
	if mh.Controllen > 0 {
		if mh.Controllen > ctlOnStack {
			if err := args.CheckControllen(mh.Controllen, optmemMax()); err != nil {
				return m, errnoFor(err)
			}
		}
		m.Control = make([]byte, mh.Controllen)
		if _, err := args.ReadBytes(tid, mh.Control, len(m.Control), m.Control); err != nil {
			return m, errnoFor(err)
		}
	}
	m.Flags = mh.Flags
	return m, 0
}

// evaluateSend evaluates the policy on every destination the sends name
// and returns the strongest verdict (kill, deny, log, allow); c's record
// shows the address that decided. An errno is the kernel's answer for a
// destination that cannot be looked up (an AF_UNIX path that does not
// exist).
func (s *receiver) evaluateSend(caller emulate.Caller, c *call, sc *sendCall, flags uint32, kind sendKind) (policy.Decision, unix.Errno) {
	var best policy.Decision
	var bestAddr policy.Sockaddr
	var bestSock resolve.Object
	bestSpelled := ""
	decided := false
	for i := range sc.msgs {
		m := &sc.msgs[i]
		sa, ok := peerAddr(sc.sock, m.Name, flags)
		if !ok {
			continue
		}
		pa := policy.Sockaddr{Family: sa.Family, IP: sa.IP, Port: sa.Port, UnixPath: sa.UnixPath, Abstract: sa.Abstract}
		var sock resolve.Object
		spelled := ""
		if sa.Family == unix.AF_UNIX && !sa.Abstract {
			var p *emulate.Prepared
			var errno unix.Errno
			sock, p, errno = s.unixPeer(caller, c, sa.UnixPath)
			if errno != 0 {
				return policy.Decision{}, errno
			}
			m.Peer, pa.UnixPath, spelled = p, sock.Path, sa.UnixPath
		}
		c.pc.Addr, c.pc.HasAddr = pa, true
		d := s.pol.Evaluate(&c.pc)
		if !decided || strength(d.Action) > strength(best.Action) {
			best, bestAddr, bestSock, bestSpelled, decided = d, pa, sock, spelled, true
		}
		if d.Action == policy.ActionDeny || d.Action == policy.ActionKill {
			break
		}
	}
	if decided {
		c.pc.Addr, c.pc.HasAddr = bestAddr, true
		if bestSpelled != "" {
			// The record shows the spelling and the socket file.
			c.sock, c.hasSock, c.spelledSock = bestSock, true, bestSpelled
		}
		return best, 0
	}
	c.pc.Addr, c.pc.HasAddr = policy.Sockaddr{}, false
	if c.pc.Nr == nrConnect {
		// Governed sends without a destination go to the connected peer.
		return policy.Decision{Action: policy.ActionAllow}, 0
	}
	return s.pol.Evaluate(&c.pc), 0
}

// unixPeer resolves an AF_UNIX pathname destination like any path, in the
// watchee's view and following symlinks as the kernel's lookup does
// (unix_find_bsd), so policy matches the socket file's reference name
// whatever the spelling. When vigil will send, the file is held for the
// send (PrepareHeld), which then reaches exactly the socket vetted. The
// returned object holds no descriptor.
func (s *receiver) unixPeer(caller emulate.Caller, c *call, path string) (resolve.Object, *emulate.Prepared, unix.Errno) {
	emulating := s.cfg.Emulator != nil && !s.cfg.Unverified
	obj, err := s.resolver.Resolve(resolve.Request{Tid: caller.Tid, Tgid: caller.Pid, Dirfd: unix.AT_FDCWD,
		Path: path, Follow: true, OwnRoot: s.ownRoot.Load(), Identity: true, Keep: emulating})
	if err != nil {
		c.fail(err)
		return obj, nil, c.err
	}
	if !emulating {
		return obj, nil, 0
	}
	p, err := s.cfg.Emulator.PrepareHeld(caller, obj.Fd, -1, "", emulate.LookupFollow)
	obj.Close() // PrepareHeld holds copies; the caller keeps no descriptor
	if err != nil {
		if e, ok := kernelAnswer(err); ok {
			return obj, nil, e
		}
		s.log.Warn().Err(err).Str("path", path).Msg("denying: an AF_UNIX destination could not be held for the send")
		return obj, nil, unix.EPERM
	}
	return obj, p, 0
}

// peerAddr decodes a send's destination as the socket's protocol will use
// it, and reports false when the protocol ignores it or refuses it (then it
// names no peer).
func peerAddr(sock *emulate.Socket, name []byte, flags uint32) (args.Sockaddr, bool) {
	if len(name) < 2 {
		return args.Sockaddr{}, false
	}
	switch sock.Domain {
	case unix.AF_INET, unix.AF_INET6:
		if sock.Type == unix.SOCK_STREAM && flags&unix.MSG_FASTOPEN == 0 {
			return args.Sockaddr{}, false // tcp_sendmsg ignores msg_name
		}
		if fam := uint16(name[0]) | uint16(name[1])<<8; fam == unix.AF_UNSPEC && sock.Type != unix.SOCK_STREAM {
			// udp_sendmsg, raw_sendmsg and rawv6_sendmsg read an
			// AF_UNSPEC address as one of the socket's family.
			as := append([]byte(nil), name...)
			as[0], as[1] = byte(sock.Domain), byte(sock.Domain>>8)
			name = as
		}
	case unix.AF_UNIX:
		if sock.Type != unix.SOCK_DGRAM {
			return args.Sockaddr{}, false // stream: EISCONN/EOPNOTSUPP; seqpacket: ignored
		}
	}
	sa, err := args.DecodeSockaddr(name)
	if err != nil {
		return args.Sockaddr{}, false // the protocol refuses it too (EINVAL)
	}
	if sa.Family == unix.AF_UNIX && sa.UnixPath == "" && !sa.Abstract {
		return args.Sockaddr{}, false // unnamed: unix_validate_addr says EINVAL
	}
	return sa, true
}

// strength orders verdicts for a call with several destinations.
func strength(a policy.Action) int {
	switch a {
	case policy.ActionKill:
		return 4
	case policy.ActionDeny:
		return 3
	case policy.ActionLog:
		return 2
	case policy.ActionAllow:
		return 1
	}
	return 5 // unknown: fail closed
}
