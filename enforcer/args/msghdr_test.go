package args

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"
)

func msghdrBytes(name uint64, namelen int32, iov, iovlen, ctl, ctllen uint64, flags uint32) []byte {
	b := make([]byte, MsghdrSize)
	hostEndian.PutUint64(b[0:], name)
	hostEndian.PutUint32(b[8:], uint32(namelen))
	hostEndian.PutUint64(b[16:], iov)
	hostEndian.PutUint64(b[24:], iovlen)
	hostEndian.PutUint64(b[32:], ctl)
	hostEndian.PutUint64(b[40:], ctllen)
	hostEndian.PutUint32(b[48:], flags)
	return b
}

func iovBytes(vs ...Iovec) []byte {
	b := make([]byte, 0, len(vs)*IovecSize)
	for _, v := range vs {
		b = hostEndian.AppendUint64(b, v.Base)
		b = hostEndian.AppendUint64(b, v.Len)
	}
	return b
}

func TestDecodeMsghdrAppliesCopyMsghdrRules(t *testing.T) {
	for _, tc := range []struct {
		name    string
		b       []byte
		want    Msghdr
		wantErr error
	}{
		{"plain", msghdrBytes(0x1000, 16, 0x2000, 2, 0x3000, 24, 0x80), Msghdr{Name: 0x1000, Namelen: 16, Iov: 0x2000, Iovlen: 2, Control: 0x3000, Controllen: 24, Flags: 0x80}, nil},
		{"NULL name ignores its length", msghdrBytes(0, -5, 0, 0, 0, 0, 0), Msghdr{}, nil},
		{"negative length", msghdrBytes(0x1000, -1, 0, 0, 0, 0, 0), Msghdr{Name: 0x1000}, ErrInvalid},
		{"long name is clamped", msghdrBytes(0x1000, 500, 0, 0, 0, 0, 0), Msghdr{Name: 0x1000, Namelen: SockaddrStorageSize}, nil},
		{"zero length is no name", msghdrBytes(0x1000, 0, 0, 0, 0, 0, 0), Msghdr{}, nil},
		{"iovlen is checked later", msghdrBytes(0, 0, 0x2000, UioMaxIov+1, 0, 0, 0), Msghdr{Iov: 0x2000, Iovlen: UioMaxIov + 1}, nil},
		{"short", make([]byte, 55), Msghdr{}, ErrInvalid},
	} {
		got, err := DecodeMsghdr(tc.b)
		if err != tc.wantErr || (err == nil && got != tc.want) {
			t.Errorf("%s: %+v, %v; want %+v, %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestDecodeIovecsAppliesImportIovecRules(t *testing.T) {
	dst := make([]Iovec, 4)
	for _, tc := range []struct {
		name      string
		b         []byte
		wantTotal uint64
		wantErr   error
	}{
		{"two", iovBytes(Iovec{0x1000, 10}, Iovec{0x2000, 20}), 30, nil},
		{"none", nil, 0, nil},
		{"single negative length is capped", iovBytes(Iovec{0x1000, 1 << 63}), MaxRWCount, nil},
		{"negative length among several", iovBytes(Iovec{0x1000, 1}, Iovec{0x2000, 1 << 63}), 0, ErrInvalid},
		{"negative length wins over a bad base", iovBytes(Iovec{1 << 62, 1}, Iovec{0x2000, 1 << 63}), 0, ErrInvalid},
		{"kernel address", iovBytes(Iovec{0xffff888000000000, 1}), 0, ErrFault},
		{"range past user space", iovBytes(Iovec{0x7ffffffff000 - 8, 16}), 0, ErrFault},
		{"total is capped", iovBytes(Iovec{0x1000, MaxRWCount - 5}, Iovec{0x2000, 100}), MaxRWCount, nil},
	} {
		_, total, err := DecodeIovecs(tc.b, dst)
		if err != tc.wantErr || total != tc.wantTotal {
			t.Errorf("%s: total %d, %v; want %d, %v", tc.name, total, err, tc.wantTotal, tc.wantErr)
		}
	}
}

func cmsgBuf(msgs ...[]byte) []byte { return bytes.Join(msgs, nil) }

func cmsgRaw(l uint64, level, typ int32, data []byte) []byte {
	b := hostEndian.AppendUint64(nil, l)
	b = hostEndian.AppendUint32(b, uint32(level))
	b = hostEndian.AppendUint32(b, uint32(typ))
	return append(b, data...)
}

func TestNextCmsgWalksLikeForEachCmsghdr(t *testing.T) {
	rights := AppendCmsg(nil, unix.SOL_SOCKET, unix.SCM_RIGHTS, []byte{3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0})
	creds := AppendCmsg(nil, unix.SOL_SOCKET, unix.SCM_CREDENTIALS, EncodeUcred(Ucred{Pid: 7, Uid: 8, Gid: 9}))
	if want := unix.CmsgSpace(12); len(rights) != want {
		t.Fatalf("AppendCmsg wrote %d bytes, CMSG_SPACE(12) is %d", len(rights), want)
	}
	ctl := cmsgBuf(rights, creds, []byte{1, 2, 3}) // a tail shorter than a header ends the walk
	var got []Cmsg
	for off := 0; ; {
		c, next, ok, err := NextCmsg(ctl, off)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, c)
		off = next
	}
	if len(got) != 2 || got[0].Type != unix.SCM_RIGHTS || len(got[0].Data) != 12 || got[1].Type != unix.SCM_CREDENTIALS {
		t.Fatalf("walked %+v", got)
	}
	if u, err := DecodeUcred(got[1].Data); err != nil || u != (Ucred{7, 8, 9}) {
		t.Fatalf("ucred %+v, %v", u, err)
	}
	var fds [ScmMaxFd]int32
	if n, err := Fds(got[0].Data, fds[:]); err != nil || n != 3 || fds[2] != 5 {
		t.Fatalf("fds %v, %d, %v", fds[:3], n, err)
	}
	for _, tc := range []struct {
		name string
		ctl  []byte
	}{
		{"length below the header", cmsgRaw(8, 1, 1, make([]byte, 8))},
		{"length past the buffer", cmsgRaw(40, 1, 1, make([]byte, 8))},
		{"second message bad", cmsgBuf(rights, cmsgRaw(0, 1, 1, nil))},
	} {
		err := walkCmsgs(tc.ctl)
		if err != ErrInvalid {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, err)
		}
	}
	if err := walkCmsgs(make([]byte, 15)); err != nil {
		t.Errorf("buffer shorter than a header: %v, want no message", err)
	}
}

func walkCmsgs(ctl []byte) error {
	for off := 0; ; {
		_, next, ok, err := NextCmsg(ctl, off)
		if err != nil || !ok {
			return err
		}
		off = next
	}
}

func TestReadIovDataCopiesAcrossIovecsUntilAFault(t *testing.T) {
	r := mapRegion(t, "RRG")
	a := r.put(10, []byte("hello "))
	b := r.put(PageSize-3, []byte("world")) // crosses into the second page
	bad := r.addr(2*PageSize + 5)
	remote := make([]unix.RemoteIovec, UioMaxIov)
	iovs := []Iovec{{a, 6}, {b, 5}}
	dst := make([]byte, 11)
	if n, err := ReadIovData(self, iovs, 0, dst, remote); err != nil || string(dst[:n]) != "hello world" {
		t.Fatalf("read %q, %v", dst[:n], err)
	}
	if n, err := ReadIovData(self, iovs, 4, dst[:5], remote); err != nil || string(dst[:n]) != "o wor" {
		t.Fatalf("skip 4: %q, %v", dst[:n], err)
	}
	if n, err := ReadIovData(self, append(iovs, Iovec{bad, 4}), 0, make([]byte, 15), remote); err != nil || n != 11 {
		t.Fatalf("fault after 11 bytes: %d, %v", n, err)
	}
	if _, err := ReadIovData(self, []Iovec{{bad, 4}}, 0, make([]byte, 4), remote); err != ErrFault {
		t.Fatalf("unreadable: %v, want ErrFault", err)
	}
	if n, err := ReadIovData(self, nil, 0, nil, remote); err != nil || n != 0 {
		t.Fatalf("nothing: %d, %v", n, err)
	}
}

func FuzzDecodeMsghdr(f *testing.F) {
	f.Add(msghdrBytes(0x1000, 16, 0x2000, 2, 0x3000, 24, 0x80))
	f.Add(msghdrBytes(0, -1, 0, 0, 0, 0, 0))
	f.Add(msghdrBytes(0x1000, -1, 0, 1<<40, 0, 1<<40, 0))
	f.Add(make([]byte, 10))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMsghdr(b)
		if len(b) != MsghdrSize {
			if err != ErrInvalid {
				t.Fatalf("length %d: %v", len(b), err)
			}
			return
		}
		if err == nil && (m.Namelen < 0 || m.Namelen > SockaddrStorageSize || (m.Name == 0) != (m.Namelen == 0)) {
			t.Fatalf("name %#x length %d", m.Name, m.Namelen)
		}
		if err != nil && err != ErrInvalid {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

func FuzzDecodeIovecs(f *testing.F) {
	f.Add(iovBytes(Iovec{0x1000, 10}, Iovec{0x2000, 20}))
	f.Add(iovBytes(Iovec{1 << 63, 1 << 63}))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		dst := make([]Iovec, len(b)/IovecSize+1)
		n, total, err := DecodeIovecs(b, dst)
		if len(b)%IovecSize != 0 {
			if err != ErrBufferTooSmall {
				t.Fatalf("length %d: %v", len(b), err)
			}
			return
		}
		if err != nil {
			return
		}
		var sum uint64
		for _, v := range dst[:n] {
			if !accessOK(v.Base, v.Len) {
				t.Fatalf("accepted %+v", v)
			}
			sum += v.Len
		}
		if sum != total || total > MaxRWCount {
			t.Fatalf("total %d, sum %d", total, sum)
		}
	})
}

func FuzzNextCmsg(f *testing.F) {
	f.Add(AppendCmsg(nil, unix.SOL_SOCKET, unix.SCM_RIGHTS, []byte{1, 0, 0, 0}))
	f.Add(cmsgRaw(0, 0, 0, nil))
	f.Add(cmsgRaw(1<<63, 1, 1, make([]byte, 20)))
	f.Add(cmsgBuf(AppendCmsg(nil, 1, 2, make([]byte, 13)), cmsgRaw(17, 0, 0, make([]byte, 1))))
	f.Fuzz(func(t *testing.T, ctl []byte) {
		off := 0
		for steps := 0; ; steps++ {
			c, next, ok, err := NextCmsg(ctl, off)
			if err != nil {
				if err != ErrInvalid {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !ok {
				return
			}
			if next <= off || next > len(ctl) || uint64(len(c.Data))+CmsghdrSize != c.Len {
				t.Fatalf("at %d: next %d, %+v", off, next, c)
			}
			var fds [ScmMaxFd]int32
			_, _ = Fds(c.Data, fds[:])
			_, _ = DecodeUcred(c.Data)
			off = next
		}
	})
}
