package emulate

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/args"
)

// Control message levels and types vigil passes through on sockets other
// than AF_UNIX and netlink: what the kernel takes from any sender, without a
// capability check on the sending task (net/core/sock.c __sock_cmsg_send,
// net/ipv4/ip_sockglue.c ip_cmsg_send, net/ipv6/datagram.c
// ip6_datagram_send_ctl, net/ipv4/udp.c udp_cmsg_send). The rest either
// needs a capability the kernel would check against vigil (SO_MARK,
// SO_PRIORITY above 6, IP options, IPv6 extension headers) or is unknown
// here; those are refused with EPERM.
const (
	soPriority        = 12 // SO_PRIORITY; 0..6 need no capability (sk_set_prio_allowed)
	soTimestampingO   = 37 // SO_TIMESTAMPING_OLD
	scmTxtime         = 61 // SCM_TXTIME
	soTimestampingN   = 65 // SO_TIMESTAMPING_NEW
	scmTsOptID        = 81 // SCM_TS_OPT_ID
	ipTOS             = 1
	ipTTL             = 2
	ipPktinfo         = 8
	ipv6Pktinfo       = 50
	ipv6Hoplimit      = 52
	ipv6Dontfrag      = 62
	ipv6Tclass        = 67
	udpSegment        = 103
	tcPrioInteractive = 6
	netlinkUsersock   = 2 // NETLINK_USERSOCK: NL_CFG_F_NONROOT_SEND
	capSetgid         = 6
	capSetuid         = 7
	capNetAdmin       = 12
	capSysAdmin       = 21
)

func passThrough(level, typ int32, data []byte) bool {
	switch level {
	case unix.SOL_SOCKET:
		switch typ {
		case unix.SCM_RIGHTS, unix.SCM_CREDENTIALS:
			return true // semantically SOL_UNIX: other families ignore them
		case soTimestampingO, soTimestampingN, scmTxtime, scmTsOptID:
			return true
		case soPriority:
			return len(data) == 4 && binary.NativeEndian.Uint32(data) <= tcPrioInteractive
		}
	case unix.SOL_IP:
		return typ == ipTOS || typ == ipTTL || typ == ipPktinfo
	case unix.SOL_IPV6:
		return typ == ipv6Pktinfo || typ == ipv6Hoplimit || typ == ipv6Dontfrag || typ == ipv6Tclass
	case unix.SOL_UDP:
		return typ == udpSegment
	}
	return false
}

// control turns the watchee's control data into vigil's, or answers the
// errno the kernel would (EINVAL for a malformed message, EBADF for a bad
// descriptor, EPERM or ESRCH for credentials the watchee may not claim), or
// EPERM for a control message vigil cannot pass faithfully. The returned
// descriptors are vigil's copies of SCM_RIGHTS; the caller closes them after
// the send.
func (e *Emulator) control(s *Socket, ctl []byte, valid func() error) ([]byte, []int, unix.Errno, error) {
	scm := s.Domain == unix.AF_UNIX || s.Domain == unix.AF_NETLINK
	var b sendControl
	for off := 0; ; {
		c, next, ok, err := args.NextCmsg(ctl, off)
		if err != nil {
			return b.fail(unix.EINVAL, nil) // CMSG_OK
		}
		if !ok {
			break
		}
		off = next
		var errno unix.Errno
		switch {
		case !scm:
			errno = e.passCmsg(&b, s, c)
		case c.Level != unix.SOL_SOCKET:
			// __scm_send ignores other levels.
		default:
			errno, err = e.scmCmsg(&b, s, c, valid)
		}
		if errno != 0 || err != nil {
			return b.fail(errno, err)
		}
	}
	if scm {
		if err := e.appendSenderCreds(&b, s, valid); err != nil {
			return b.fail(0, err)
		}
	}
	return b.out, b.fds, 0, nil
}

// sendControl is the control data control builds for vigil's send.
type sendControl struct {
	out []byte
	// fds are vigil's copies of the SCM_RIGHTS descriptors.
	fds []int
	// creds are the SCM_CREDENTIALS the watchee claimed, when hasCreds.
	creds    args.Ucred
	hasCreds bool
	// st is the watchee's credentials, once read.
	st *sendCreds
}

// fail closes the descriptors copied so far and returns control's answer
// for errno or err.
func (b *sendControl) fail(errno unix.Errno, err error) ([]byte, []int, unix.Errno, error) {
	closeAll(b.fds)
	return nil, nil, errno, err
}

// passCmsg copies control message c on a socket without SCM (neither
// AF_UNIX nor netlink) when vigil can pass it faithfully, else answers
// EPERM.
func (e *Emulator) passCmsg(b *sendControl, s *Socket, c args.Cmsg) unix.Errno {
	if !passThrough(c.Level, c.Type, c.Data) {
		e.log.Warn().Int("cmsg_level", int(c.Level)).Int("cmsg_type", int(c.Type)).Int("domain", s.Domain).
			Msg("denying an emulated send: vigil cannot pass this control message faithfully (it needs a capability the kernel would check against vigil, or is unknown)")
		return unix.EPERM
	}
	b.out = args.AppendCmsg(b.out, c.Level, c.Type, c.Data)
	return 0
}

// scmCmsg takes SOL_SOCKET control message c on an AF_UNIX or netlink
// socket, as __scm_send does.
func (e *Emulator) scmCmsg(b *sendControl, s *Socket, c args.Cmsg, valid func() error) (unix.Errno, error) {
	switch c.Type {
	case unix.SCM_RIGHTS:
		return b.rights(s, c.Data)
	case unix.SCM_CREDENTIALS:
		return e.claimCreds(b, s, c.Data, valid)
	}
	return unix.EINVAL, nil
}

// rights copies the descriptors of an SCM_RIGHTS message from the watchee
// and appends the message naming vigil's copies (scm_fp_copy).
func (b *sendControl) rights(s *Socket, data []byte) (unix.Errno, error) {
	if s.Domain != unix.AF_UNIX {
		return unix.EINVAL, nil
	}
	var nums [args.ScmMaxFd]int32
	n, err := args.Fds(data, nums[:])
	if err != nil || len(b.fds)+n > args.ScmMaxFd {
		return unix.EINVAL, nil // scm_fp_copy
	}
	if n == 0 {
		return 0, nil
	}
	out := make([]byte, 0, 4*n)
	for _, fd := range nums[:n] {
		if fd < 0 {
			return unix.EBADF, nil
		}
		nfd, err := unix.PidfdGetfd(s.pidfd, int(fd), 0)
		if err != nil {
			if err == unix.EBADF {
				return unix.EBADF, nil
			}
			return 0, ErrGone
		}
		b.fds = append(b.fds, nfd)
		out = binary.NativeEndian.AppendUint32(out, uint32(nfd))
	}
	b.out = args.AppendCmsg(b.out, unix.SOL_SOCKET, unix.SCM_RIGHTS, out)
	return 0, nil
}

// claimCreds checks the credentials an SCM_CREDENTIALS message claims
// against the watchee's, as scm_check_creds does.
func (e *Emulator) claimCreds(b *sendControl, s *Socket, data []byte, valid func() error) (unix.Errno, error) {
	u, err := args.DecodeUcred(data)
	if err != nil {
		return unix.EINVAL, nil
	}
	if b.st == nil || !b.st.full {
		if b.st, err = e.readSendCreds(s.c, valid, true); err != nil {
			return 0, err
		}
	}
	st := b.st
	k, errno := st.claim(u, s.c.Pid)
	if errno == unix.EPERM && st.nsTgid != u.Pid && !st.samePidNS && st.pidNSOwned && st.hasCap(capSysAdmin) {
		e.log.Warn().Int("tid", s.c.Tid).Int32("claimed_pid", u.Pid).
			Msg("denying an emulated send: SCM_CREDENTIALS claiming another process's pid across pid namespaces is not emulated")
	}
	if errno != 0 {
		return errno, nil
	}
	b.creds, b.hasCreds = k, true
	return 0, nil
}

// appendSenderCreds appends the SCM_CREDENTIALS every AF_UNIX and netlink
// send carries: the ones the watchee claimed, or else the watchee's own.
func (e *Emulator) appendSenderCreds(b *sendControl, s *Socket, valid func() error) error {
	if !b.hasCreds {
		if b.st == nil {
			st, err := e.readSendCreds(s.c, valid, false)
			if err != nil {
				return err
			}
			b.st = st
		}
		// scm_set_cred: the sender's tgid and real ids, attached
		// explicitly so a receiver with SO_PASSCRED (and SCM_PIDFD)
		// sees the watchee rather than vigil.
		b.creds, b.hasCreds = args.Ucred{Pid: int32(s.c.Pid), Uid: b.st.uid[0], Gid: b.st.gid[0]}, true
	}
	b.out = args.AppendCmsg(b.out, unix.SOL_SOCKET, unix.SCM_CREDENTIALS, args.EncodeUcred(b.creds))
	return nil
}

// sendCreds is what scm_check_creds looks at in the sending task, with ids
// as vigil sees them from the initial user namespace.
type sendCreds struct {
	uid, gid [3]uint32 // real, effective, saved
	capEff   uint64
	nsTgid   int32 // the tgid in the watchee's own pid namespace
	uidMap   idMap
	gidMap   idMap
	// pidNSOwned says the watchee's capabilities count in its pid
	// namespace (its user namespace owns it, or is vigil's).
	pidNSOwned bool
	// samePidNS says the watchee's pid namespace is vigil's.
	samePidNS bool
	// full says the id maps and pid namespace were read too, which only
	// checking claimed credentials needs.
	full bool
}

// readSendCreds reads the watchee thread's credentials from /proc/<tid>,
// with full its id maps and pid namespace too, then checks the call is
// still pending, so a recycled tid cannot lend another process's identity.
func (e *Emulator) readSendCreds(c Caller, valid func() error, full bool) (*sendCreds, error) {
	dir, err := unix.Openat(e.procfd, strconv.Itoa(c.Tid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, ErrGone
	}
	defer unix.Close(dir)
	bp := e.bufs.Get().(*[]byte)
	defer e.bufs.Put(bp)
	st := &sendCreds{}
	b, err := readProcFile(dir, "status", *bp)
	if err != nil {
		return nil, ErrGone
	}
	if err := st.parseStatus(b); err != nil {
		return nil, fmt.Errorf("reading credentials of %d: %w", c.Tid, err)
	}
	for _, m := range []struct {
		file string
		dst  *idMap
	}{{"uid_map", &st.uidMap}, {"gid_map", &st.gidMap}} {
		if !full {
			break
		}
		if b, err = readProcFile(dir, m.file, *bp); err != nil {
			return nil, ErrGone
		}
		if *m.dst, err = parseIDMap(b); err != nil {
			return nil, fmt.Errorf("reading %s of %d: %w", m.file, c.Tid, err)
		}
	}
	if full {
		if st.samePidNS, st.pidNSOwned, err = e.pidNS(dir); err != nil {
			return nil, err
		}
		st.full = true
	}
	if err := valid(); err != nil {
		return nil, ErrGone
	}
	return st, nil
}

func (st *sendCreds) parseStatus(b []byte) error {
	have := 0
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch string(key) {
		case "Uid", "Gid":
			dst := &st.uid
			if key[0] == 'G' {
				dst = &st.gid
			}
			for i := range dst {
				v, ok := nthUint(val, i, 10)
				if !ok {
					return fmt.Errorf("bad %s line", key)
				}
				dst[i] = v
			}
			have++
		case "CapEff":
			v, _, ok := nextUint(val, 16)
			if !ok {
				return fmt.Errorf("bad CapEff line")
			}
			st.capEff = v
			have++
		case "NStgid":
			f := bytes.Fields(val)
			if len(f) == 0 {
				return fmt.Errorf("bad NStgid line")
			}
			v, err := strconv.ParseInt(string(f[len(f)-1]), 10, 32)
			if err != nil {
				return fmt.Errorf("bad NStgid line")
			}
			st.nsTgid = int32(v)
			have++
		}
	}
	if have != 4 {
		return fmt.Errorf("status lacks Uid, Gid, CapEff or NStgid")
	}
	return nil
}

// toOuter is make_kuid/make_kgid: the host id of the namespace's id in, or
// false when it is unmapped.
func (m idMap) toOuter(in uint32) (uint32, bool) {
	for _, e := range m {
		if in >= e.Inner && uint64(in) < uint64(e.Inner)+uint64(e.Count) {
			return e.Outer + (in - e.Inner), true
		}
	}
	return 0, false
}

func (st *sendCreds) hasCap(c uint) bool { return st.capEff&(1<<c) != 0 }

// claim checks credentials the watchee passed in SCM_CREDENTIALS as
// scm_check_creds and __scm_send check them for the watchee, and returns
// them as vigil must pass them: ids of the initial user namespace and a pid
// of vigil's pid namespace (pid is the watchee's tgid there). A pid other
// than the watchee's own is passed on only when the watchee shares vigil's
// pid namespace (where the kernel's lookup, ESRCH included, is the same);
// across pid namespaces it is refused with EPERM.
func (st *sendCreds) claim(u args.Ucred, pid int) (args.Ucred, unix.Errno) {
	uid, uok := st.uidMap.toOuter(u.Uid)
	gid, gok := st.gidMap.toOuter(u.Gid)
	if !uok || !gok {
		return args.Ucred{}, unix.EINVAL
	}
	pidOK := u.Pid == st.nsTgid || (st.pidNSOwned && st.hasCap(capSysAdmin))
	uidOK := uid == st.uid[0] || uid == st.uid[1] || uid == st.uid[2] || st.hasCap(capSetuid)
	gidOK := gid == st.gid[0] || gid == st.gid[1] || gid == st.gid[2] || st.hasCap(capSetgid)
	if !pidOK || !uidOK || !gidOK {
		return args.Ucred{}, unix.EPERM
	}
	switch {
	case u.Pid == st.nsTgid:
		return args.Ucred{Pid: int32(pid), Uid: uid, Gid: gid}, 0
	case st.samePidNS:
		return args.Ucred{Pid: u.Pid, Uid: uid, Gid: gid}, 0
	}
	return args.Ucred{}, unix.EPERM
}

// pidNS reports whether the watchee (dir is its /proc/<tid>) shares vigil's
// pid namespace, and whether its capabilities count there: its user
// namespace owns its pid namespace (NS_GET_USERNS), or is vigil's, the
// ancestor of all.
func (e *Emulator) pidNS(dir int) (same, owned bool, err error) {
	self, err := statNS(e.procfd, "self/ns/pid")
	if err != nil {
		return false, false, fmt.Errorf("identifying vigil's pid namespace: %w", err)
	}
	pidns, err := statNS(dir, "ns/pid")
	if err != nil {
		return false, false, ErrGone
	}
	user, err := statNS(dir, "ns/user")
	if err != nil {
		return false, false, ErrGone
	}
	if user == e.selfUser {
		return pidns == self, true, nil
	}
	fd, err := unix.Openat(dir, "ns/pid", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, false, ErrGone
	}
	defer unix.Close(fd)
	owner, err := unix.IoctlRetInt(fd, nsGetUserns)
	if err != nil {
		return pidns == self, false, nil
	}
	defer unix.Close(owner)
	var st unix.Stat_t
	if err := unix.Fstat(owner, &st); err != nil {
		return false, false, fmt.Errorf("identifying the owner of a pid namespace: %w", err)
	}
	return pidns == self, (nsID{Dev: st.Dev, Ino: st.Ino}) == user, nil
}

// nsGetUserns is NS_GET_USERNS, _IO(0xb7, 0x1) (include/uapi/linux/nsfs.h).
const nsGetUserns = 0xb701

// netlinkDestAllowed applies netlink_sendmsg's check on a destination other
// than the kernel (a port or multicast groups), which looks at the sending
// task's CAP_NET_ADMIN: the watchee's, not vigil's.
func (e *Emulator) netlinkDestAllowed(s *Socket, name []byte, valid func() error) (unix.Errno, error) {
	if binary.NativeEndian.Uint16(name) != unix.AF_NETLINK {
		return 0, nil // the kernel refuses it (EINVAL)
	}
	port, groups := binary.NativeEndian.Uint32(name[4:]), binary.NativeEndian.Uint32(name[8:])
	if (port == 0 && groups == 0) || s.Protocol == netlinkUsersock {
		return 0, nil
	}
	st, err := e.readSendCreds(s.c, valid, false)
	if err != nil {
		return 0, err
	}
	if !st.hasCap(capNetAdmin) {
		return unix.EPERM, nil
	}
	return 0, nil
}
