package procinfo

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestParseStatus(t *testing.T) {
	pi, ok := parseStatus([]byte("Name:\tcat\nUmask:\t0022\nState:\tR (running)\nTgid:\t4211\nNgid:\t0\nPid:\t4212\n"))
	if !ok || pi.Tgid != 4211 || pi.Comm != "cat" {
		t.Fatalf("got %+v, %v", pi, ok)
	}
	if _, ok := parseStatus([]byte("Name:\tx\n")); ok {
		t.Fatal("a status without Tgid must not parse")
	}
}

func TestGetReadsThisProcess(t *testing.T) {
	c := New()
	pi := c.Get(os.Getpid(), 0)
	if pi.Tgid != os.Getpid() || pi.Comm == "" {
		t.Fatalf("got %+v", pi)
	}
	if got, ok := FreshTgid(os.Getpid()); !ok || got != os.Getpid() {
		t.Fatalf("FreshTgid: %d %v", got, ok)
	}
	if pi := c.Get(1<<30, 0); pi.Tgid != 1<<30 {
		t.Fatalf("a vanished thread should fall back to its tid: %+v", pi)
	}
}

func TestGetReadsAgainWhenTheCommEpochMoves(t *testing.T) {
	// The thread renames itself as an exec would rename it: the cached comm
	// holds while the epoch does, and goes when it moves. The thread stays
	// locked, so Go ends it with the test instead of reusing a renamed one.
	runtime.LockOSThread()
	tid := unix.Gettid()
	name := func(s string) {
		t.Helper()
		b := append([]byte(s), 0)
		if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	name("before-exec")
	c := New()
	if pi := c.Get(tid, 7); pi.Comm != "before-exec" {
		t.Fatalf("first read: %+v", pi)
	}
	name("after-exec")
	if pi := c.Get(tid, 7); pi.Comm != "before-exec" {
		t.Fatalf("same epoch: %+v, want the cached comm (the cache would read /proc every call)", pi)
	}
	if pi := c.Get(tid, 8); pi.Comm != "after-exec" {
		t.Fatalf("the epoch moved: %+v, want the new comm", pi)
	}
}

func TestCapableInitiallyReadsTheEffectiveSet(t *testing.T) {
	self := os.Getpid()
	eff := capEff(t)
	for _, c := range []int{0, 2, 21, 24} {
		want := eff&(1<<uint(c)) != 0
		if got := CapableInitially(self, c); got != want {
			t.Errorf("capability %d: %v, CapEff %#x says %v", c, got, eff, want)
		}
	}
	if CapableInitially(-1, 0) {
		t.Error("a thread that cannot be read is capable")
	}
}

func capEff(t *testing.T) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no CapEff")
	return 0
}

func TestStatFieldCountsAfterTheCommand(t *testing.T) {
	line := []byte("42 (a) b (c) d) S 7 42 42 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 123456 0\n")
	for _, c := range []struct {
		n    int
		want string
		ok   bool
	}{{3, "S", true}, {4, "7", true}, {6, "42", true}, {7, "0", true}, {22, "123456", true}, {40, "", false}, {2, "", false}} {
		got, ok := StatField(line, c.n)
		if ok != c.ok || string(got) != c.want {
			t.Errorf("field %d: %q %v, want %q %v", c.n, got, ok, c.want, c.ok)
		}
	}
	if _, ok := StatField([]byte("no parenthesis"), 3); ok {
		t.Error("a line without the command's parenthesis gave a field")
	}
}
