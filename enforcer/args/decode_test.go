package args

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// sockaddr builders in the kernel's layout.

func sin(ip string, port uint16, n int) []byte {
	b := make([]byte, max(n, SockaddrInSize))
	hostEndian.PutUint16(b, unix.AF_INET)
	binary.BigEndian.PutUint16(b[2:], port)
	a := netip.MustParseAddr(ip).As4()
	copy(b[4:], a[:])
	return b[:n]
}

func sin6(ip string, port uint16, scope uint32, n int) []byte {
	b := make([]byte, max(n, SockaddrIn6Size))
	hostEndian.PutUint16(b, unix.AF_INET6)
	binary.BigEndian.PutUint16(b[2:], port)
	hostEndian.PutUint32(b[4:], 0xabcdef) // flowinfo, ignored
	a := netip.MustParseAddr(ip).As16()
	copy(b[8:], a[:])
	hostEndian.PutUint32(b[24:], scope)
	return b[:n]
}

func sun(path string) []byte {
	b := make([]byte, 2, 2+len(path))
	hostEndian.PutUint16(b, unix.AF_UNIX)
	return append(b, path...)
}

func family(f uint16, n int) []byte {
	b := make([]byte, n)
	hostEndian.PutUint16(b, f)
	for i := 2; i < n; i++ {
		b[i] = byte(i)
	}
	return b
}

func TestDecodeSockaddr(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
		want Sockaddr
		str  string
		err  error
	}{
		{"inet", sin("10.0.0.1", 80, 16), Sockaddr{Family: unix.AF_INET, IP: netip.MustParseAddr("10.0.0.1"), Port: 80}, "10.0.0.1:80", nil},
		{"inet, sockaddr_storage length", sin("127.0.0.1", 6379, 128), Sockaddr{Family: unix.AF_INET, IP: netip.MustParseAddr("127.0.0.1"), Port: 6379}, "127.0.0.1:6379", nil},
		{"inet, high port in network order", sin("1.2.3.4", 0xfe01, 16), Sockaddr{Family: unix.AF_INET, IP: netip.MustParseAddr("1.2.3.4"), Port: 0xfe01}, "1.2.3.4:65025", nil},
		{"inet, 15 bytes", sin("10.0.0.1", 80, 15), Sockaddr{Family: unix.AF_INET}, "", ErrInvalid},
		{"inet, family only", sin("10.0.0.1", 80, 2), Sockaddr{Family: unix.AF_INET}, "", ErrInvalid},
		{"inet6, RFC 2133 length", sin6("::1", 22, 7, 24), Sockaddr{Family: unix.AF_INET6, IP: netip.MustParseAddr("::1"), Port: 22}, "[::1]:22", nil},
		{"inet6, full length with scope", sin6("fe80::1", 22, 2, 28), Sockaddr{Family: unix.AF_INET6, IP: netip.MustParseAddr("fe80::1"), Port: 22, ScopeID: 2}, "[fe80::1%2]:22", nil},
		{"inet6, 27 bytes ignores the scope", sin6("fe80::1", 22, 2, 27), Sockaddr{Family: unix.AF_INET6, IP: netip.MustParseAddr("fe80::1"), Port: 22}, "[fe80::1]:22", nil},
		{"inet6, 23 bytes", sin6("::1", 22, 0, 23), Sockaddr{Family: unix.AF_INET6}, "", ErrInvalid},
		{"inet6, v4-mapped stays v6", sin6("::ffff:127.0.0.1", 6379, 0, 28), Sockaddr{Family: unix.AF_INET6, IP: netip.MustParseAddr("::ffff:127.0.0.1"), Port: 6379}, "[::ffff:127.0.0.1]:6379", nil},
		{"unix path with NUL", sun("/run/docker.sock\x00garbage"), Sockaddr{Family: unix.AF_UNIX, UnixPath: "/run/docker.sock"}, "unix:/run/docker.sock", nil},
		{"unix path without NUL", sun("/tmp/s"), Sockaddr{Family: unix.AF_UNIX, UnixPath: "/tmp/s"}, "unix:/tmp/s", nil},
		{"unix path of 108 bytes", sun(string(make108('p'))), Sockaddr{Family: unix.AF_UNIX, UnixPath: string(make108('p'))}, "unix:" + string(make108('p')), nil},
		{"unix, 111 bytes", sun(string(make108('p')) + "x"), Sockaddr{Family: unix.AF_UNIX}, "", ErrInvalid},
		{"unix abstract", sun("\x00vigil"), Sockaddr{Family: unix.AF_UNIX, UnixPath: "vigil", Abstract: true}, "unix:@vigil", nil},
		{"unix abstract with NULs", sun("\x00a\x00b\x00"), Sockaddr{Family: unix.AF_UNIX, UnixPath: "a\x00b\x00", Abstract: true}, `unix:@a\x00b\x00`, nil},
		{"unix abstract, empty name", sun("\x00"), Sockaddr{Family: unix.AF_UNIX, Abstract: true}, "unix:@", nil},
		{"unix unnamed", sun(""), Sockaddr{Family: unix.AF_UNIX}, "unix:", nil},
		{"unspec", family(unix.AF_UNSPEC, 16), Sockaddr{Family: unix.AF_UNSPEC}, "unspec", nil},
		{"netlink", family(unix.AF_NETLINK, 12), Sockaddr{Family: unix.AF_NETLINK}, "family(16)", nil},
		{"unknown family", family(0xffff, 2), Sockaddr{Family: 0xffff}, "family(65535)", nil},
		{"empty", nil, Sockaddr{}, "", ErrInvalid},
		{"one byte", []byte{2}, Sockaddr{}, "", ErrInvalid},
		{"above sockaddr_storage", sin("10.0.0.1", 80, 129), Sockaddr{}, "", ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeSockaddr(c.b)
			if got != c.want || err != c.err {
				t.Fatalf("DecodeSockaddr = %+v, %v; want %+v, %v", got, err, c.want, c.err)
			}
			if err == nil && got.String() != c.str {
				t.Errorf("String() = %q, want %q", got.String(), c.str)
			}
		})
	}
	if got, _ := DecodeSockaddr(sun("")); !got.IsUnnamed() {
		t.Errorf("family-only AF_UNIX address is not unnamed")
	}
	if got, _ := DecodeSockaddr(sun("\x00")); got.IsUnnamed() {
		t.Errorf("empty abstract name is unnamed")
	}
	if got, _ := DecodeSockaddr(sin6("::ffff:10.0.0.1", 1, 0, 28)); !got.IP.Is4In6() || got.IP.Is4() {
		t.Errorf("v4-mapped address was unmapped: %v", got.IP)
	}
}

func make108(c byte) []byte {
	b := make([]byte, 108)
	for i := range b {
		b[i] = c
	}
	return b
}

// TestSockaddrMatchesKernel connects sockets (UDP and unix datagram, which
// send nothing) to addresses in our memory: where ReadSockaddr and
// DecodeSockaddr refuse an address the kernel gives the same errno, and where
// they accept it the kernel does not call it invalid or unreadable.
func TestSockaddrMatchesKernel(t *testing.T) {
	r := mapRegion(t, "RG")
	cases := []struct {
		name    string
		domain  int
		b       []byte
		off     int
		addrlen uint64
	}{
		{"inet", unix.AF_INET, sin("127.0.0.1", 9, 16), 0, 16},
		{"inet, storage length", unix.AF_INET, sin("127.0.0.1", 9, 128), 0, 128},
		{"inet, 15 bytes", unix.AF_INET, sin("127.0.0.1", 9, 16), 0, 15},
		{"inet, length 0", unix.AF_INET, sin("127.0.0.1", 9, 16), 0, 0},
		{"inet, length 1", unix.AF_INET, sin("127.0.0.1", 9, 16), 0, 1},
		{"inet, length 129", unix.AF_INET, sin("127.0.0.1", 9, 16), 0, 129},
		{"inet, negative length", unix.AF_INET, sin("127.0.0.1", 9, 16), 0, 0xfffffff0},
		{"inet, upper bits of length", unix.AF_INET, sin("127.0.0.1", 9, 16), 0, 1<<32 | 16},
		{"inet, runs into a guard page", unix.AF_INET, sin("127.0.0.1", 9, 16), PageSize - 8, 16},
		{"unix path", unix.AF_UNIX, sun("/vigil-nonexistent/sock"), 0, 2 + 23},
		{"unix path, full sockaddr_un", unix.AF_UNIX, sun(string(make108('p'))), 0, SockaddrUnSize},
		{"unix, 111 bytes", unix.AF_UNIX, sun(string(make108('p')) + "x"), 0, SockaddrUnSize + 1},
		{"unix abstract", unix.AF_UNIX, sun("\x00vigil-nonexistent\x00x"), 0, 2 + 20},
		{"unix, 1 byte", unix.AF_UNIX, sun("x"), 0, 1},
	}
	var buf [SockaddrStorageSize]byte
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fd, err := unix.Socket(c.domain, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatalf("socket: %v", err)
			}
			defer unix.Close(fd)
			addr := r.put(c.off, c.b)
			n, err := ReadSockaddr(self, addr, c.addrlen, buf[:])
			if err == nil {
				_, err = DecodeSockaddr(buf[:n])
			}
			_, _, kerr := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(addr), uintptr(c.addrlen))
			switch {
			case err != nil && kerr != Errno(err):
				t.Fatalf("kernel: %v, args: %v", kerr, err)
			case err == nil && (kerr == unix.EINVAL || kerr == unix.EFAULT):
				t.Fatalf("kernel refused the address (%v), args accepted it", kerr)
			}
		})
	}
}

func TestDecodeOpenHow(t *testing.T) {
	how := openHowBytes()
	long := append(append([]byte{}, how...), make([]byte, 100)...)
	dirty := append(append([]byte{}, how...), 0, 0, 1)
	cases := []struct {
		name string
		b    []byte
		want OpenHow
		err  error
	}{
		{"VER0", how, OpenHow{Flags: 1<<40 | unix.O_CREAT, Mode: 0o644, Resolve: 0x18}, nil},
		{"zero tail", long, OpenHow{Flags: 1<<40 | unix.O_CREAT, Mode: 0o644, Resolve: 0x18}, nil},
		{"non-zero tail", dirty, OpenHow{}, ErrTooBig},
		{"23 bytes", how[:23], OpenHow{}, ErrInvalid},
		{"empty", nil, OpenHow{}, ErrInvalid},
		{"PAGE_SIZE+1", make([]byte, PageSize+1), OpenHow{}, ErrTooBig},
	}
	for _, c := range cases {
		got, err := DecodeOpenHow(c.b)
		if got != c.want || err != c.err {
			t.Errorf("%s: %+v, %v; want %+v, %v", c.name, got, err, c.want, c.err)
		}
	}
}

func TestDecodeCloneArgs(t *testing.T) {
	mk := func(n int, set func(c *[CloneArgsSizeLatest + 8]byte)) []byte {
		var b [CloneArgsSizeLatest + 8]byte
		hostEndian.PutUint64(b[32:], uint64(unix.SIGCHLD))
		set(&b)
		return b[:n]
	}
	put := func(off int, v uint64) func(*[CloneArgsSizeLatest + 8]byte) {
		return func(b *[CloneArgsSizeLatest + 8]byte) { hostEndian.PutUint64(b[off:], v) }
	}
	nop := func(*[CloneArgsSizeLatest + 8]byte) {}
	sigchld := CloneArgs{ExitSignal: uint64(unix.SIGCHLD)}
	cases := []struct {
		name string
		b    []byte
		want CloneArgs
		err  error
	}{
		{"VER0", mk(64, put(0, unix.CLONE_NEWUSER)), CloneArgs{Flags: unix.CLONE_NEWUSER, ExitSignal: uint64(unix.SIGCHLD)}, nil},
		{"VER0 ignores what follows", mk(64, put(80, 5)), sigchld, nil},
		{"between versions zero-extends", mk(68, put(64, 0xffffffffffff)), CloneArgs{ExitSignal: uint64(unix.SIGCHLD), SetTid: 0xffffffff}, ErrInvalid},
		{"VER2", mk(88, put(80, 3)), CloneArgs{ExitSignal: uint64(unix.SIGCHLD), Cgroup: 3}, nil},
		{"zero tail", mk(96, nop), sigchld, nil},
		{"non-zero tail", mk(96, put(88, 1)), CloneArgs{}, ErrTooBig},
		{"63 bytes", mk(63, nop), CloneArgs{}, ErrInvalid},
		{"PAGE_SIZE+1", make([]byte, PageSize+1), CloneArgs{}, ErrTooBig},
		{"exit_signal above _NSIG", mk(64, put(32, 65)), CloneArgs{ExitSignal: 65}, ErrInvalid},
		{"exit_signal _NSIG", mk(64, put(32, 64)), CloneArgs{ExitSignal: 64}, nil},
		{"exit_signal beyond CSIGNAL", mk(64, put(32, 0x111)), CloneArgs{ExitSignal: 0x111}, ErrInvalid},
		{"set_tid_size above MAX_PID_NS_LEVEL", mk(88, func(b *[96]byte) { put(64, 0x1000)(b); put(72, 33)(b) }), CloneArgs{ExitSignal: uint64(unix.SIGCHLD), SetTid: 0x1000, SetTidSize: 33}, ErrInvalid},
		{"set_tid_size without set_tid", mk(88, put(72, 1)), CloneArgs{ExitSignal: uint64(unix.SIGCHLD), SetTidSize: 1}, ErrInvalid},
		{"set_tid without set_tid_size", mk(88, put(64, 0x1000)), CloneArgs{ExitSignal: uint64(unix.SIGCHLD), SetTid: 0x1000}, ErrInvalid},
		{"set_tid with MAX_PID_NS_LEVEL", mk(88, func(b *[96]byte) { put(64, 0x1000)(b); put(72, 32)(b) }), CloneArgs{ExitSignal: uint64(unix.SIGCHLD), SetTid: 0x1000, SetTidSize: 32}, nil},
		{"CLONE_INTO_CGROUP in VER1", mk(80, put(0, unix.CLONE_INTO_CGROUP)), CloneArgs{Flags: unix.CLONE_INTO_CGROUP, ExitSignal: uint64(unix.SIGCHLD)}, ErrInvalid},
		{"CLONE_INTO_CGROUP in VER2", mk(88, put(0, unix.CLONE_INTO_CGROUP)), CloneArgs{Flags: unix.CLONE_INTO_CGROUP, ExitSignal: uint64(unix.SIGCHLD)}, nil},
		{"CLONE_INTO_CGROUP, cgroup above INT_MAX", mk(88, func(b *[96]byte) { put(0, unix.CLONE_INTO_CGROUP)(b); put(80, 1<<31)(b) }), CloneArgs{Flags: unix.CLONE_INTO_CGROUP, ExitSignal: uint64(unix.SIGCHLD), Cgroup: 1 << 31}, ErrInvalid},
	}
	for _, c := range cases {
		got, err := DecodeCloneArgs(c.b)
		if got != c.want || err != c.err {
			t.Errorf("%s: %+v, %v; want %+v, %v", c.name, got, err, c.want, c.err)
		}
	}
}

func TestDecodeDev(t *testing.T) {
	cases := []struct {
		name      string
		mode, dev uint64
		want      Dev
		str       string
		err       error
	}{
		{"char 1:3", unix.S_IFCHR | 0o666, unix.Mkdev(1, 3), Dev{DevChar, 1, 3}, "c 1:3", nil},
		{"block 8:0", unix.S_IFBLK | 0o660, unix.Mkdev(8, 0), Dev{DevBlock, 8, 0}, "b 8:0", nil},
		{"char with a large minor", unix.S_IFCHR, unix.Mkdev(136, 0x12345), Dev{DevChar, 136, 0x12345}, "c 136:74565", nil},
		{"char, glibc dev_t upper bits truncated", unix.S_IFCHR, unix.Mkdev(0x1005, 3), Dev{DevChar, 5, 3}, "c 5:3", nil},
		{"fifo ignores dev", unix.S_IFIFO | 0o600, unix.Mkdev(1, 3), Dev{DevOther, 0, 0}, "other", nil},
		{"socket", unix.S_IFSOCK, 0, Dev{}, "other", nil},
		{"regular", unix.S_IFREG, 0, Dev{}, "other", nil},
		{"zero type is regular", 0o644, 0, Dev{}, "other", nil},
		{"umode_t truncation", 1<<16 | unix.S_IFCHR, unix.Mkdev(1, 5), Dev{DevChar, 1, 5}, "c 1:5", nil},
		{"directory", unix.S_IFDIR | 0o755, 0, Dev{}, "", ErrPerm},
		{"symlink", unix.S_IFLNK | 0o777, 0, Dev{}, "", ErrInvalid},
		{"unknown type", 0o170000, 0, Dev{}, "", ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeDev(c.mode, c.dev)
			if got != c.want || err != c.err {
				t.Fatalf("DecodeDev = %+v, %v; want %+v, %v", got, err, c.want, c.err)
			}
			if err == nil && got.String() != c.str {
				t.Errorf("String() = %q, want %q", got.String(), c.str)
			}
			// mknod with a NULL path never creates anything: the
			// kernel gives may_mknod's error, else the path's EFAULT.
			want := unix.EFAULT
			if err != nil {
				want = Errno(err)
			}
			_, _, kerr := unix.Syscall(unix.SYS_MKNOD, 0, uintptr(c.mode), uintptr(c.dev))
			if kerr != want {
				t.Errorf("kernel mknod: %v, want %v", kerr, want)
			}
		})
	}
	if DevChar.String() != "char" || DevBlock.String() != "block" || DevOther.String() != "other" {
		t.Errorf("DevKind names")
	}
}

// TestConnectBindCheckOrder pins the order doc.go documents for callers that
// answer connect and bind with the kernel's errno: connect looks up the fd,
// then copies the address, then wants a socket; bind wants a socket first.
func TestConnectBindCheckOrder(t *testing.T) {
	devnull, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(devnull)
	badfd := ^uintptr(0) // -1
	for _, c := range []struct {
		name string
		nr   uintptr
		fd   uintptr
		want unix.Errno
	}{
		{"connect, bad fd and bad length", unix.SYS_CONNECT, badfd, unix.EBADF},
		{"connect, non-socket and bad length", unix.SYS_CONNECT, uintptr(devnull), unix.EINVAL},
		{"bind, bad fd and bad length", unix.SYS_BIND, badfd, unix.EBADF},
		{"bind, non-socket and bad length", unix.SYS_BIND, uintptr(devnull), unix.ENOTSOCK},
	} {
		if _, _, e := unix.Syscall(c.nr, c.fd, 0, SockaddrStorageSize+1); e != c.want {
			t.Errorf("%s: %v, want %v", c.name, e, c.want)
		}
	}
}
