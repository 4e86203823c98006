package enforcer

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/emulate"
)

// TestPeerAddrReadsTheDestinationAsTheProtocolDoes: the address a send
// names is judged as the socket's protocol will use it, so no spelling
// reaches a peer the policy did not see.
func TestPeerAddrReadsTheDestinationAsTheProtocolDoes(t *testing.T) {
	sin := func(fam uint16, ip string, port uint16, n int) []byte {
		b := make([]byte, n)
		binary.LittleEndian.PutUint16(b, fam)
		binary.BigEndian.PutUint16(b[2:], port)
		a := netip.MustParseAddr(ip).As4()
		copy(b[4:], a[:])
		return b
	}
	sun := func(path string) []byte {
		b := []byte{unix.AF_UNIX, 0}
		return append(b, path...)
	}
	udp4 := &emulate.Socket{Domain: unix.AF_INET, Type: unix.SOCK_DGRAM}
	tcp4 := &emulate.Socket{Domain: unix.AF_INET, Type: unix.SOCK_STREAM}
	udp6 := &emulate.Socket{Domain: unix.AF_INET6, Type: unix.SOCK_DGRAM}
	dgram := &emulate.Socket{Domain: unix.AF_UNIX, Type: unix.SOCK_DGRAM}
	stream := &emulate.Socket{Domain: unix.AF_UNIX, Type: unix.SOCK_STREAM}
	for _, tc := range []struct {
		name  string
		sock  *emulate.Socket
		addr  []byte
		flags uint32
		want  string // "" when no peer is named
	}{
		{"udp", udp4, sin(unix.AF_INET, "10.0.0.1", 53, 16), 0, "10.0.0.1:53"},
		{"AF_UNSPEC on udp is AF_INET", udp4, sin(unix.AF_UNSPEC, "10.0.0.1", 53, 16), 0, "10.0.0.1:53"},
		{"short AF_UNSPEC names nothing (EINVAL)", udp4, sin(unix.AF_UNSPEC, "10.0.0.1", 53, 8), 0, ""},
		{"short AF_INET names nothing (EINVAL)", udp4, sin(unix.AF_INET, "10.0.0.1", 53, 15), 0, ""},
		{"tcp ignores it", tcp4, sin(unix.AF_INET, "10.0.0.1", 80, 16), 0, ""},
		{"tcp fast open uses it", tcp4, sin(unix.AF_INET, "10.0.0.1", 80, 16), unix.MSG_FASTOPEN, "10.0.0.1:80"},
		{"AF_INET on a v6 socket", udp6, sin(unix.AF_INET, "10.0.0.1", 53, 16), 0, "10.0.0.1:53"},
		{"unix datagram path", dgram, sun("/run/x.sock"), 0, "unix:/run/x.sock"},
		{"unix datagram abstract", dgram, sun("\x00name"), 0, "unix:@name"},
		{"unnamed names nothing", dgram, sun(""), 0, ""},
		{"unix stream never", stream, sun("/run/x.sock"), 0, ""},
		{"no address", udp4, nil, 0, ""},
	} {
		sa, ok := peerAddr(tc.sock, tc.addr, tc.flags)
		got := ""
		if ok {
			got = sa.String()
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
