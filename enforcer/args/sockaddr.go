package args

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// Socket address sizes the kernel's protocol handlers check.
const (
	// SockaddrInSize is sizeof(struct sockaddr_in); inet_bind and
	// tcp_v4_connect/ip4_datagram_connect give EINVAL below it.
	SockaddrInSize = 16
	// SockaddrIn6SizeRFC2133 is SIN6_LEN_RFC2133, a sockaddr_in6 without
	// sin6_scope_id: the shortest one inet6_bind and tcp_v6_connect accept.
	SockaddrIn6SizeRFC2133 = 24
	// SockaddrIn6Size is sizeof(struct sockaddr_in6); the kernel reads
	// sin6_scope_id only from an address this long.
	SockaddrIn6Size = 28
	// SockaddrUnSize is sizeof(struct sockaddr_un); unix_validate_addr
	// gives EINVAL above it.
	SockaddrUnSize = 110
	// sunPathOffset is offsetof(struct sockaddr_un, sun_path).
	sunPathOffset = 2
)

// Sockaddr is a decoded socket address. Which fields are set depends on
// Family:
//
//   - AF_INET, AF_INET6: IP and Port (host byte order). An IPv4-mapped IPv6
//     address stays an IPv6 address here (policy decides whether to unmap
//     it). ScopeID is sin6_scope_id, set only from a full 28-byte
//     sockaddr_in6 (the kernel ignores it in a shorter one); it is a number,
//     not a netip zone, because naming the interface needs the watchee's
//     network namespace and a zone string would allocate.
//   - AF_UNIX: UnixPath and Abstract. A pathname address has Abstract false
//     and UnixPath the bytes of sun_path up to the first NUL or the address
//     length. An abstract address has Abstract true and UnixPath the name
//     after the leading NUL, exactly addrlen-3 bytes, embedded NULs
//     included. An address of just the family (addrlen 2) is unnamed:
//     UnixPath empty and Abstract false (bind autobinds it, connect gives
//     EINVAL).
//   - AF_UNSPEC and every other family: only Family. The caller decides
//     (connect with AF_UNSPEC dissolves an association; inet_bind accepts it
//     as INADDR_ANY).
type Sockaddr struct {
	Family   uint16
	IP       netip.Addr
	Port     uint16
	ScopeID  uint32
	UnixPath string
	Abstract bool
}

// IsUnnamed reports whether s is an AF_UNIX address without a name (only the
// family, addrlen 2).
func (s Sockaddr) IsUnnamed() bool {
	return s.Family == unix.AF_UNIX && s.UnixPath == "" && !s.Abstract
}

// AddrPort returns the IP address and port of an AF_INET or AF_INET6 address.
func (s Sockaddr) AddrPort() netip.AddrPort {
	return netip.AddrPortFrom(s.IP, s.Port)
}

// DecodeSockaddr decodes the socket address b as move_addr_to_kernel copied
// it (len(b) is the addrlen) and returns the EINVAL the kernel's protocol
// handler gives for a length it refuses:
//
//   - more than SockaddrStorageSize bytes (move_addr_to_kernel) or fewer than
//     the 2-byte family (inet_stream_connect, inet_dgram_connect,
//     unix_validate_addr): ErrInvalid with a zero Sockaddr;
//   - AF_INET shorter than SockaddrInSize, AF_INET6 shorter than
//     SockaddrIn6SizeRFC2133, AF_UNIX longer than SockaddrUnSize: ErrInvalid
//     with Family set.
//
// The kernel dispatches on the socket's family, not on sa_family, and a
// mismatch gives EAFNOSUPPORT or EINVAL depending on the protocol: when that
// matters, compare Family with the socket's domain (SO_DOMAIN on the fd).
//
// The result never refers to b. The AF_UNIX name is a new string, the only
// allocation any decoder makes; vigil accepts it because an address that
// aliased the reusable Scratch buffer would silently change under a record
// that kept it (as the audit record does).
func DecodeSockaddr(b []byte) (Sockaddr, error) {
	if len(b) > SockaddrStorageSize || len(b) < 2 {
		return Sockaddr{}, ErrInvalid
	}
	s := Sockaddr{Family: hostEndian.Uint16(b)}
	switch s.Family {
	case unix.AF_INET:
		if len(b) < SockaddrInSize {
			return s, ErrInvalid
		}
		s.Port = binary.BigEndian.Uint16(b[2:])
		s.IP = netip.AddrFrom4([4]byte(b[4:8]))
	case unix.AF_INET6:
		if len(b) < SockaddrIn6SizeRFC2133 {
			return s, ErrInvalid
		}
		s.Port = binary.BigEndian.Uint16(b[2:])
		s.IP = netip.AddrFrom16([16]byte(b[8:24]))
		if len(b) >= SockaddrIn6Size {
			s.ScopeID = hostEndian.Uint32(b[24:])
		}
	case unix.AF_UNIX:
		if len(b) > SockaddrUnSize {
			return s, ErrInvalid
		}
		path := b[sunPathOffset:]
		switch {
		case len(path) == 0:
			// Unnamed.
		case path[0] == 0:
			// unix_bind_abstract: the name is all addr_len-3 bytes
			// after the NUL, NULs included.
			s.Abstract = true
			s.UnixPath = string(path[1:])
		default:
			// unix_mkname_bsd terminates sun_path at addr_len and
			// the name ends at the first NUL before that.
			if i := bytes.IndexByte(path, 0); i >= 0 {
				path = path[:i]
			}
			s.UnixPath = string(path)
		}
	}
	return s, nil
}

// String formats s for audit records and messages, in the spelling of the
// policy's addr key: "10.0.0.1:80", "[::1]:22", "[fe80::1%2]:22" (scope id as
// a number), "unix:/run/docker.sock", "unix:@name" for an abstract name (with
// non-printable bytes, NULs included, escaped as \xNN), "unix:" for an
// unnamed address, "unspec", and "family(N)" for other families.
func (s Sockaddr) String() string {
	switch s.Family {
	case unix.AF_INET:
		return s.AddrPort().String()
	case unix.AF_INET6:
		if s.ScopeID == 0 {
			return s.AddrPort().String()
		}
		b := make([]byte, 0, 64)
		b = append(b, '[')
		b = s.IP.AppendTo(b)
		b = append(b, '%')
		b = strconv.AppendUint(b, uint64(s.ScopeID), 10)
		b = append(b, "]:"...)
		b = strconv.AppendUint(b, uint64(s.Port), 10)
		return string(b)
	case unix.AF_UNIX:
		b := make([]byte, 0, len(s.UnixPath)+8)
		b = append(b, "unix:"...)
		if !s.Abstract {
			return string(append(b, s.UnixPath...))
		}
		b = append(b, '@')
		for i := 0; i < len(s.UnixPath); i++ {
			c := s.UnixPath[i]
			if c < 0x20 || c >= 0x7f || c == '\\' {
				b = append(b, '\\', 'x', hexDigit[c>>4], hexDigit[c&0xf])
				continue
			}
			b = append(b, c)
		}
		return string(b)
	case unix.AF_UNSPEC:
		return "unspec"
	}
	return "family(" + strconv.Itoa(int(s.Family)) + ")"
}

const hexDigit = "0123456789abcdef"
