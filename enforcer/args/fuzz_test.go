package args

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// The decoders run on bytes the watchee controls. The fuzz targets check
// that they never panic and that what they return is consistent with the
// bytes: a re-encoding of the result matches the input, errors come only with
// the lengths the kernel refuses.

func FuzzDecodeSockaddr(f *testing.F) {
	for _, b := range [][]byte{
		sin("10.0.0.1", 80, 16), sin("127.0.0.1", 6379, 128), sin("1.2.3.4", 1, 15),
		sin6("::1", 22, 0, 24), sin6("fe80::1", 22, 3, 28), sin6("::ffff:127.0.0.1", 1, 0, 28), sin6("::1", 1, 0, 23),
		sun("/run/docker.sock"), sun("/tmp/s\x00junk"), sun("\x00abstract\x00name"), sun(""), sun("\x00"),
		sun(string(make108('p'))), sun(string(make108('p')) + "x"),
		family(unix.AF_UNSPEC, 16), family(unix.AF_NETLINK, 12), nil, {1}, make([]byte, 129),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSockaddr(b)
		_ = s.String()
		if len(b) < 2 || len(b) > SockaddrStorageSize {
			if err != ErrInvalid || s != (Sockaddr{}) {
				t.Fatalf("length %d: %+v, %v; want ErrInvalid", len(b), s, err)
			}
			return
		}
		fam := binary.LittleEndian.Uint16(b)
		if s.Family != fam {
			t.Fatalf("family %d, want %d", s.Family, fam)
		}
		switch fam {
		case unix.AF_INET:
			if (err != nil) != (len(b) < SockaddrInSize) {
				t.Fatalf("inet length %d: %v", len(b), err)
			}
			if err == nil && (!s.IP.Is4() || !bytes.Equal(sin(s.IP.String(), s.Port, 8), b[:8])) {
				t.Fatalf("inet %v does not re-encode to %x", s.AddrPort(), b[:8])
			}
		case unix.AF_INET6:
			if (err != nil) != (len(b) < SockaddrIn6SizeRFC2133) {
				t.Fatalf("inet6 length %d: %v", len(b), err)
			}
			if err == nil {
				a := s.IP.As16()
				if !s.IP.Is6() || s.IP.Zone() != "" || !bytes.Equal(a[:], b[8:24]) || binary.BigEndian.Uint16(b[2:]) != s.Port {
					t.Fatalf("inet6 %v does not match %x", s.AddrPort(), b)
				}
				if len(b) < SockaddrIn6Size && s.ScopeID != 0 {
					t.Fatalf("scope id from a %d-byte address", len(b))
				}
			}
		case unix.AF_UNIX:
			if (err != nil) != (len(b) > SockaddrUnSize) {
				t.Fatalf("unix length %d: %v", len(b), err)
			}
			if err != nil {
				return
			}
			p := b[2:]
			switch {
			case len(p) == 0:
				if !s.IsUnnamed() {
					t.Fatalf("family-only address not unnamed: %+v", s)
				}
			case s.Abstract:
				if p[0] != 0 || s.UnixPath != string(p[1:]) {
					t.Fatalf("abstract %q from %q", s.UnixPath, p)
				}
			default:
				if p[0] == 0 || !bytes.HasPrefix(p, []byte(s.UnixPath)) || bytes.IndexByte([]byte(s.UnixPath), 0) >= 0 ||
					(len(s.UnixPath) < len(p) && p[len(s.UnixPath)] != 0) {
					t.Fatalf("path %q from %q", s.UnixPath, p)
				}
			}
		default:
			if err != nil || s != (Sockaddr{Family: fam}) {
				t.Fatalf("family %d: %+v, %v", fam, s, err)
			}
		}
	})
}

func FuzzDecodeOpenHow(f *testing.F) {
	f.Add(openHowBytes())
	f.Add(make([]byte, 23))
	f.Add(append(openHowBytes(), 0, 0, 0, 0, 0, 0, 0, 1))
	f.Add(make([]byte, PageSize))
	f.Add(make([]byte, PageSize+1))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeOpenHow(b)
		switch {
		case len(b) < OpenHowSizeVer0:
			if err != ErrInvalid {
				t.Fatalf("length %d: %v, want ErrInvalid", len(b), err)
			}
		case len(b) > PageSize || !allZero(b[OpenHowSizeLatest:]):
			if err != ErrTooBig {
				t.Fatalf("length %d: %v, want ErrTooBig", len(b), err)
			}
		default:
			var re [OpenHowSizeLatest]byte
			binary.LittleEndian.PutUint64(re[0:], h.Flags)
			binary.LittleEndian.PutUint64(re[8:], h.Mode)
			binary.LittleEndian.PutUint64(re[16:], h.Resolve)
			if err != nil || !bytes.Equal(re[:], b[:OpenHowSizeLatest]) {
				t.Fatalf("%+v, %v does not re-encode to %x", h, err, b[:OpenHowSizeLatest])
			}
			_ = FormatOpenFlags(h.Flags)
			_ = FormatResolve(h.Resolve)
		}
		if err != nil && h != (OpenHow{}) {
			t.Fatalf("fields %+v along with %v", h, err)
		}
	})
}

func FuzzDecodeCloneArgs(f *testing.F) {
	f.Add(cloneArgsBytes())
	f.Add(cloneArgsBytes()[:CloneArgsSizeVer0])
	f.Add(cloneArgsBytes()[:CloneArgsSizeVer1])
	f.Add(make([]byte, 63))
	f.Add(make([]byte, 70))
	f.Add(append(make([]byte, CloneArgsSizeLatest), 1))
	f.Add(make([]byte, PageSize+1))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCloneArgs(b)
		switch {
		case len(b) > PageSize:
			if err != ErrTooBig {
				t.Fatalf("length %d: %v, want ErrTooBig", len(b), err)
			}
			return
		case len(b) < CloneArgsSizeVer0:
			if err != ErrInvalid {
				t.Fatalf("length %d: %v, want ErrInvalid", len(b), err)
			}
			return
		case len(b) > CloneArgsSizeLatest && !allZero(b[CloneArgsSizeLatest:]):
			if err != ErrTooBig {
				t.Fatalf("non-zero tail: %v, want ErrTooBig", err)
			}
			return
		}
		if err != nil && err != ErrInvalid {
			t.Fatalf("unexpected %v", err)
		}
		// The fields re-encode to the input, zero-extended.
		var re, in [CloneArgsSizeLatest]byte
		copy(in[:], b)
		for i, v := range []uint64{c.Flags, c.Pidfd, c.ChildTid, c.ParentTid, c.ExitSignal, c.Stack, c.StackSize, c.TLS, c.SetTid, c.SetTidSize, c.Cgroup} {
			binary.LittleEndian.PutUint64(re[8*i:], v)
		}
		if re != in {
			t.Fatalf("%+v does not re-encode to %x", c, in)
		}
		// Accepted args satisfy copy_clone_args_from_user's rules.
		if err == nil && (c.SetTidSize > 32 || (c.SetTid == 0) != (c.SetTidSize == 0) || c.ExitSignal > 64 ||
			(c.Flags&unix.CLONE_INTO_CGROUP != 0 && (c.Cgroup > 1<<31-1 || len(b) < CloneArgsSizeVer2))) {
			t.Fatalf("accepted invalid %+v (length %d)", c, len(b))
		}
		_ = FormatCloneFlags(c.Flags)
		_ = FormatLegacyCloneFlags(c.Flags)
	})
}
