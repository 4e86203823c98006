package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

type addrKind uint8

const (
	addrIP addrKind = iota
	addrUnixPath
	addrUnixAbstract
)

// addrPattern is one compiled entry of an `addr` list.
//
// Syntax (docs/design.md §5 plus these decisions):
//
//	10.0.0.0/8            IPv4 CIDR, any port
//	127.0.0.1             one address, any port (same as 127.0.0.1/32)
//	127.0.0.1:6379        one address, one port
//	10.0.0.0/8:443        CIDR and port
//	::1, fd00::/8         IPv6 address or CIDR, any port: no brackets needed
//	[::1]:22              IPv6 with a port: brackets required, as in URLs
//	[fd00::/8]:443        IPv6 CIDR with a port: the prefix goes inside
//	unix:/run/docker.sock pathname socket; a path glob (*, ?, **)
//	unix:@name            abstract socket (no leading NUL); `*` and `?` match
//
// "[fd00::]/8" is rejected with a hint: the brackets delimit the host part
// and a prefix length is part of the host part. Zones (fe80::1%eth0) are
// rejected: the policy cannot know interface names. A CIDR with host bits set
// (10.1.2.3/8) is rejected because it almost always means a typo.
//
// An IPv4-mapped IPv6 address is IPv4: ::ffff:10.0.0.0/104 in a rule is
// stored as 10.0.0.0/8 and ::ffff:10.1.2.3 in a call is matched as
// 10.1.2.3, so an AF_INET6 socket cannot dodge an IPv4 rule. Consequently an
// IPv6 prefix like ::/0 covers native IPv6 only.
type addrPattern struct {
	src     string
	kind    addrKind
	prefix  netip.Prefix // addrIP, unmapped
	port    uint16
	anyPort bool
	glob    glob     // addrUnixPath
	name    wildcard // addrUnixAbstract
}

func parseAddr(s string) (addrPattern, error) {
	a := addrPattern{src: s}
	if rest, ok := strings.CutPrefix(s, "unix:"); ok {
		if at, ok := strings.CutPrefix(rest, "@"); ok {
			if at == "" {
				return a, errors.New("empty abstract socket name (unix:@name)")
			}
			if !utf8.ValidString(at) {
				return a, errors.New("abstract socket name is not valid UTF-8")
			}
			if len(at) > 107 { // sizeof(sun_path) minus the leading NUL
				return a, errors.New("abstract socket name is longer than 107 bytes")
			}
			a.kind, a.name = addrUnixAbstract, newWildcard(at)
			return a, nil
		}
		g, err := compileGlob(rest)
		if err != nil {
			return a, fmt.Errorf("unix socket path: %w", err)
		}
		a.kind, a.glob = addrUnixPath, g
		return a, nil
	}
	if s == "" {
		return a, errors.New("empty address")
	}
	host, port, hasPort := s, "", false
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return a, errors.New("missing ] in bracketed IPv6 address")
		}
		host, rest := s[1:end], s[end+1:]
		if strings.HasPrefix(rest, "/") {
			return a, fmt.Errorf("prefix length goes inside the brackets: write [%s%s] (or %s%s without a port)", host, rest, host, rest)
		}
		if rest != "" {
			p, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return a, fmt.Errorf("unexpected %s after ]", quote(rest))
			}
			port, hasPort = p, true
		}
		if !strings.Contains(host, ":") {
			return a, errors.New("brackets are for IPv6 addresses only")
		}
		return a.finishIP(host, port, hasPort)
	}
	if strings.Count(s, ":") == 1 {
		host, port, _ = strings.Cut(s, ":")
		hasPort = true
	} else if strings.Count(s, ":") > 1 {
		// Bare IPv6: a trailing ":22" would be part of the address, so a port
		// needs brackets.
		host = s
	}
	return a.finishIP(host, port, hasPort)
}

func (a addrPattern) finishIP(host, port string, hasPort bool) (addrPattern, error) {
	a.kind = addrIP
	if strings.Contains(host, "%") {
		return a, errors.New("zoned addresses (with %) are not supported")
	}
	if strings.Contains(host, "/") {
		p, err := netip.ParsePrefix(host)
		if err != nil {
			return a, fmt.Errorf("invalid CIDR %s (want like 10.0.0.0/8 or fd00::/8)", quote(host))
		}
		if m := p.Masked(); m != p {
			return a, fmt.Errorf("CIDR %s has host bits set (did you mean %s?)", p, m)
		}
		a.prefix = p
	} else {
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return a, fmt.Errorf("invalid IP address %s (want like 127.0.0.1, 10.0.0.0/8, [::1]:22 or unix:/path)", quote(host))
		}
		a.prefix = netip.PrefixFrom(ip, ip.BitLen())
	}
	a.prefix = unmapPrefix(a.prefix)
	a.anyPort = !hasPort
	if hasPort {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || port == "" || port[0] == '+' {
			return a, fmt.Errorf("invalid port %s (want 0-65535)", quote(port))
		}
		a.port = uint16(n)
	}
	return a, nil
}

// unmapPrefix turns a prefix inside ::ffff:0:0/96 into the IPv4 prefix it
// denotes, so that mapped and plain IPv4 rules are the same rule.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	ip := p.Addr()
	if ip.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(ip.Unmap(), p.Bits()-96)
	}
	return p
}

var (
	loopback4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	loopback6 = netip.IPv6Loopback()
)

// callIP returns the IP a call's address is matched as: unmapped (see
// addrPattern), without a zone (netip.Prefix.Contains never matches a zoned
// address, which would let a watchee dodge a rule by setting
// sin6_scope_id), and, for connect, with an unspecified address replaced by
// the loopback address the kernel actually connects to
// (ip_route_connect/tcp_v6_connect), so that 0.0.0.0:6379 cannot dodge a
// rule for 127.0.0.1:6379.
func callIP(ip netip.Addr, isConnect bool) netip.Addr {
	ip = ip.WithZone("").Unmap()
	if isConnect && ip.IsUnspecified() {
		if ip.Is4() {
			return loopback4
		}
		return loopback6
	}
	return ip
}

func (a *addrPattern) match(sa *Sockaddr, ip netip.Addr) bool {
	switch a.kind {
	case addrIP:
		if sa.Family != unix.AF_INET && sa.Family != unix.AF_INET6 {
			return false
		}
		return a.prefix.Contains(ip) && (a.anyPort || a.port == sa.Port)
	case addrUnixPath:
		return sa.Family == unix.AF_UNIX && !sa.Abstract && a.glob.match(sa.UnixPath)
	case addrUnixAbstract:
		return sa.Family == unix.AF_UNIX && sa.Abstract && a.name.match(sa.UnixPath)
	}
	return false
}
