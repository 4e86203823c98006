package args

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"
)

// structCase places an extensible struct of usize bytes in a region. The
// readable bytes of the known part hold a pattern, the tail is zero except for
// one non-zero byte at offset nonzero from the struct's start when nonzero
// >= 0.
type structCase struct {
	name    string
	layout  string
	off     int // negative: from the end of the region
	usize   uint64
	nonzero int
	null    bool
	err     error
}

// structCases returns the cases for a struct the kernel knows k bytes of.
func structCases(k int) []structCase {
	u := func(n int) uint64 { return uint64(n) }
	return []structCase{
		{name: "exact size", layout: "RG", usize: u(k), nonzero: -1},
		{name: "older, shorter struct", layout: "RG", usize: u(k - 8), nonzero: -1},
		{name: "zero size", layout: "RG", usize: 0, nonzero: -1},
		{name: "newer struct, zero tail", layout: "RG", usize: u(k + 8), nonzero: -1},
		{name: "newer struct, non-zero last byte", layout: "RG", usize: u(k + 8), nonzero: k + 7, err: ErrTooBig},
		{name: "newer struct, non-zero first tail byte", layout: "RG", usize: u(k + 8), nonzero: k, err: ErrTooBig},
		{name: "PAGE_SIZE, zero tail", layout: "RG", usize: PageSize, nonzero: -1},
		{name: "PAGE_SIZE, non-zero last byte", layout: "RG", usize: PageSize, nonzero: PageSize - 1, err: ErrTooBig},
		{name: "PAGE_SIZE+1", layout: "RRG", usize: PageSize + 1, nonzero: -1, err: ErrTooBig},
		{name: "huge size", layout: "RG", usize: 1 << 63, nonzero: -1, err: ErrTooBig},
		{name: "ends at a guard page", layout: "RG", off: PageSize - k, usize: u(k), nonzero: -1},
		{name: "crosses two readable pages", layout: "RRG", off: PageSize - k/2, usize: u(k), nonzero: -1},
		{name: "zero tail runs into a guard page", layout: "RG", off: PageSize - k, usize: u(k + 8), nonzero: -1, err: ErrFault},
		{name: "zero tail runs into an unmapped page", layout: "RU", off: PageSize - k, usize: u(k + 8), nonzero: -1, err: ErrFault},
		{name: "non-zero tail before a guard page", layout: "RG", off: PageSize - k - 8, usize: u(k + 100), nonzero: k + 3, err: ErrTooBig},
		{name: "non-zero tail in its second page", layout: "RRG", off: PageSize - k - 8, usize: u(k + 200), nonzero: k + 100, err: ErrTooBig},
		{name: "known part unreadable, non-zero tail", layout: "GR", off: PageSize - k, usize: u(k + 16), nonzero: k + 1, err: ErrTooBig},
		{name: "known part unreadable, zero tail", layout: "GR", off: PageSize - k, usize: u(k + 16), nonzero: -1, err: ErrFault},
		{name: "known part half unreadable", layout: "RG", off: PageSize - k/2, usize: u(k), nonzero: -1, err: ErrFault},
		{name: "older struct half unreadable", layout: "RG", off: PageSize - k/2, usize: u(k - 8), nonzero: -1, err: ErrFault},
		{name: "NULL", layout: "R", usize: u(k), nonzero: -1, null: true, err: ErrFault},
	}
}

// place maps the region and writes the struct: known is the content of the
// known part (its readable bytes are written).
func (c structCase) place(t *testing.T, known []byte) (*region, uint64) {
	r := mapRegion(t, c.layout)
	off := c.off
	if off < 0 {
		off += r.end()
	}
	r.put(off, known[:min(len(known), int(min(c.usize, uint64(len(known)))))])
	if c.nonzero >= 0 {
		r.set(off+c.nonzero, 0x5a)
	}
	if c.null {
		return r, 0
	}
	return r, r.addr(off)
}

func TestReadStruct(t *testing.T) {
	const k = 24
	known := []byte("0123456789abcdefghijklmn")
	for _, c := range structCases(k) {
		t.Run(c.name, func(t *testing.T) {
			_, addr := c.place(t, known)
			want := int(min(c.usize, k))
			// A page-sized buffer checks the tail in one read per page;
			// one of exactly the known size takes many. Same answers.
			for _, size := range []int{PageSize, k} {
				buf := bytes.Repeat([]byte{0xff}, size)
				n, err := ReadStruct(self, addr, c.usize, k, buf)
				if err != c.err {
					t.Fatalf("buffer %d: err = %v, want %v", size, err, c.err)
				}
				if err != nil {
					continue
				}
				if n != want {
					t.Fatalf("buffer %d: n = %d, want %d", size, n, want)
				}
				if !bytes.Equal(buf[:n], known[:n]) || !allZero(buf[n:k]) {
					t.Fatalf("buffer %d: struct = %q, want %q zero-extended to %d bytes", size, buf[:k], known[:n], k)
				}
			}
		})
	}
}

func TestReadStructBadKnown(t *testing.T) {
	var buf [8]byte
	for _, known := range []int{0, -1, 9} {
		if _, err := ReadStruct(self, 0x1000, 8, known, buf[:]); err != ErrBufferTooSmall {
			t.Errorf("known %d: err = %v, want ErrBufferTooSmall", known, err)
		}
	}
}

// openHowBytes is an open_how whose flags the kernel refuses (bit 40), so
// that an openat2 that got the struct fails with EINVAL in build_open_flags
// and never opens anything (its path is NULL, too).
func openHowBytes() []byte {
	b := make([]byte, OpenHowSizeLatest)
	hostEndian.PutUint64(b[0:], 1<<40|unix.O_CREAT)
	hostEndian.PutUint64(b[8:], 0o644)
	hostEndian.PutUint64(b[16:], 0x18)
	return b
}

// TestReadOpenHowMatchesKernel runs every struct case through ReadOpenHow and
// through openat2 itself: the errnos agree, and where ReadOpenHow succeeds the
// kernel got past copying the struct (EINVAL from the flags).
func TestReadOpenHowMatchesKernel(t *testing.T) {
	known := openHowBytes()
	for _, c := range structCases(OpenHowSizeLatest) {
		t.Run(c.name, func(t *testing.T) {
			_, addr := c.place(t, known)
			var s Scratch
			how, err := ReadOpenHow(self, addr, c.usize, s.Struct[:])
			want := unix.EINVAL
			if err != nil {
				want = Errno(err)
			} else if how.Flags != 1<<40|unix.O_CREAT || how.Mode != 0o644 || how.Resolve != 0x18 {
				t.Fatalf("ReadOpenHow = %+v", how)
			}
			_, _, kerr := unix.Syscall6(unix.SYS_OPENAT2, atFdcwd, 0, uintptr(addr), uintptr(c.usize), 0, 0)
			if kerr != want {
				t.Fatalf("kernel: %v, ReadOpenHow: %v (want kernel %v)", kerr, err, want)
			}
		})
	}
}

// cloneArgsBytes is a clone_args that copy_clone_args_from_user refuses
// (exit_signal 0x1000 -> EINVAL) and, should that check ever pass,
// clone3_args_valid too (unknown flag bit 40): clone3 never creates a process
// from it.
func cloneArgsBytes() []byte {
	b := make([]byte, CloneArgsSizeLatest)
	for i := 0; i < len(b); i += 8 {
		hostEndian.PutUint64(b[i:], uint64(0x1111*(i/8+1)))
	}
	hostEndian.PutUint64(b[0:], 1<<40|unix.CLONE_NEWUSER)
	hostEndian.PutUint64(b[32:], 0x1000)
	hostEndian.PutUint64(b[64:], 0) // set_tid
	hostEndian.PutUint64(b[72:], 0) // set_tid_size
	return b
}

// TestReadCloneArgsMatchesKernel is TestReadOpenHowMatchesKernel for clone3.
func TestReadCloneArgsMatchesKernel(t *testing.T) {
	known := cloneArgsBytes()
	for _, c := range structCases(CloneArgsSizeLatest) {
		t.Run(c.name, func(t *testing.T) {
			r, addr := c.place(t, known)
			var s Scratch
			_, err := ReadCloneArgs(self, addr, c.usize, s.Struct[:])
			// Every readable copy of this struct is invalid.
			want := Errno(err)
			if err == nil {
				t.Fatalf("ReadCloneArgs accepted an invalid exit_signal")
			}
			// Belt and braces: never call clone3 on a struct whose
			// exit_signal the kernel could read as valid.
			if sig := int(addr-r.base) + 32; addr != 0 && c.usize >= 40 && r.readable(sig) && hostEndian.Uint64(r.mem[sig:]) != 0x1000 {
				t.Fatalf("test bug: exit_signal is readable and not the invalid value")
			}
			_, _, kerr := unix.RawSyscall(unix.SYS_CLONE3, uintptr(addr), uintptr(c.usize), 0)
			if kerr != want {
				t.Fatalf("kernel: %v, ReadCloneArgs: %v", kerr, err)
			}
		})
	}
}

func TestReadCloneArgsVersions(t *testing.T) {
	r := mapRegion(t, "RG")
	full := make([]byte, CloneArgsSizeLatest)
	hostEndian.PutUint64(full[0:], unix.CLONE_NEWUSER|unix.CLONE_NEWNS)
	hostEndian.PutUint64(full[32:], uint64(unix.SIGCHLD))
	hostEndian.PutUint64(full[64:], 0x7000) // set_tid
	hostEndian.PutUint64(full[72:], 2)      // set_tid_size
	hostEndian.PutUint64(full[80:], 9)      // cgroup
	addr := r.put(0, full)
	var s Scratch
	for _, c := range []struct {
		usize uint64
		want  CloneArgs
		err   error
	}{
		{CloneArgsSizeVer0, CloneArgs{Flags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS, ExitSignal: uint64(unix.SIGCHLD)}, nil},
		{CloneArgsSizeVer1, CloneArgs{Flags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS, ExitSignal: uint64(unix.SIGCHLD), SetTid: 0x7000, SetTidSize: 2}, nil},
		{CloneArgsSizeVer2, CloneArgs{Flags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS, ExitSignal: uint64(unix.SIGCHLD), SetTid: 0x7000, SetTidSize: 2, Cgroup: 9}, nil},
		{CloneArgsSizeVer0 - 1, CloneArgs{}, ErrInvalid},
		{PageSize + 1, CloneArgs{}, ErrTooBig},
	} {
		got, err := ReadCloneArgs(self, addr, c.usize, s.Struct[:])
		if got != c.want || err != c.err {
			t.Errorf("usize %d: %+v, %v; want %+v, %v", c.usize, got, err, c.want, c.err)
		}
	}
}
