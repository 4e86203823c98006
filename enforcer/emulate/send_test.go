package emulate

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/args"
)

// Tier 1: the credential checks of SCM_CREDENTIALS, on /proc text.

const sendStatus = `Name:	probe
Tgid:	4242
NStgid:	4242	7
Pid:	4242
Uid:	101000	101001	101002	101003
Gid:	101010	101011	101012	101013
CapEff:	0000000000000000
`

func TestClaimChecksCredentialsAsScmCheckCreds(t *testing.T) {
	var st sendCreds
	if err := st.parseStatus([]byte(sendStatus)); err != nil {
		t.Fatal(err)
	}
	if st.nsTgid != 7 || st.uid != [3]uint32{101000, 101001, 101002} || st.gid[2] != 101012 {
		t.Fatalf("parsed %+v", st)
	}
	var err error
	if st.uidMap, err = parseIDMap([]byte("0 100000 65536\n")); err != nil {
		t.Fatal(err)
	}
	st.gidMap = st.uidMap
	for _, tc := range []struct {
		name      string
		claim     args.Ucred
		caps      uint64
		owned, ns bool
		want      args.Ucred
		wantErrno unix.Errno
	}{
		{"own tgid and real ids", args.Ucred{Pid: 7, Uid: 1000, Gid: 1010}, 0, true, false, args.Ucred{Pid: 4242, Uid: 101000, Gid: 101010}, 0},
		{"saved uid", args.Ucred{Pid: 7, Uid: 1002, Gid: 1010}, 0, true, false, args.Ucred{Pid: 4242, Uid: 101002, Gid: 101010}, 0},
		{"fsuid does not count", args.Ucred{Pid: 7, Uid: 1003, Gid: 1010}, 0, true, false, args.Ucred{}, unix.EPERM},
		{"another uid needs CAP_SETUID", args.Ucred{Pid: 7, Uid: 0, Gid: 1010}, 1 << capSetuid, true, false, args.Ucred{Pid: 4242, Uid: 100000, Gid: 101010}, 0},
		{"another pid needs CAP_SYS_ADMIN", args.Ucred{Pid: 1, Uid: 1000, Gid: 1010}, 0, true, true, args.Ucred{}, unix.EPERM},
		{"another pid in vigil's pid namespace", args.Ucred{Pid: 1, Uid: 1000, Gid: 1010}, 1 << capSysAdmin, true, true, args.Ucred{Pid: 1, Uid: 101000, Gid: 101010}, 0},
		{"CAP_SYS_ADMIN of a namespace that does not own the pid namespace", args.Ucred{Pid: 1, Uid: 1000, Gid: 1010}, 1 << capSysAdmin, false, true, args.Ucred{}, unix.EPERM},
		{"another pid across pid namespaces is not emulated", args.Ucred{Pid: 1, Uid: 1000, Gid: 1010}, 1 << capSysAdmin, true, false, args.Ucred{}, unix.EPERM},
		{"unmapped uid", args.Ucred{Pid: 7, Uid: 70000, Gid: 1010}, ^uint64(0), true, false, args.Ucred{}, unix.EINVAL},
	} {
		st.capEff, st.pidNSOwned, st.samePidNS = tc.caps, tc.owned, tc.ns
		got, errno := st.claim(tc.claim, 4242)
		if errno != tc.wantErrno || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v, %v", tc.name, got, errno, tc.want, tc.wantErrno)
		}
	}
}

func TestOnlyUnprivilegedControlMessagesPassThrough(t *testing.T) {
	u32 := func(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }
	for _, tc := range []struct {
		level, typ int32
		data       []byte
		want       bool
	}{
		{unix.SOL_IP, unix.IP_TTL, u32(5), true},
		{unix.SOL_IP, unix.IP_PKTINFO, make([]byte, 12), true},
		{unix.SOL_IPV6, unix.IPV6_TCLASS, u32(0), true},
		{unix.SOL_UDP, unix.UDP_SEGMENT, []byte{0, 4}, true},
		{unix.SOL_SOCKET, unix.SO_PRIORITY, u32(6), true},
		{unix.SOL_SOCKET, unix.SO_PRIORITY, u32(7), false}, // needs CAP_NET_ADMIN or CAP_NET_RAW
		{unix.SOL_SOCKET, unix.SO_MARK, u32(1), false},     // needs CAP_NET_ADMIN or CAP_NET_RAW
		{unix.SOL_IP, unix.IP_RETOPTS, make([]byte, 4), false},
		{unix.SOL_IPV6, unix.IPV6_HOPOPTS, make([]byte, 8), false},
		{99, 1, nil, false},
	} {
		if got := passThrough(tc.level, tc.typ, tc.data); got != tc.want {
			t.Errorf("level %d type %d: %v, want %v", tc.level, tc.typ, got, tc.want)
		}
	}
}

func TestUnixMagicNameIsASockaddrUn(t *testing.T) {
	b := unixMagicName(12)
	if string(b[2:]) != "/proc/self/fd/12\x00" || b[0] != unix.AF_UNIX || len(b) > args.SockaddrUnSize {
		t.Fatalf("%q", b)
	}
}
