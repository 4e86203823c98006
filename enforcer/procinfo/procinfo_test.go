package procinfo

import (
	"os"
	"testing"
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
	pi := c.Get(os.Getpid())
	if pi.Tgid != os.Getpid() || pi.Comm == "" {
		t.Fatalf("got %+v", pi)
	}
	if got, ok := FreshTgid(os.Getpid()); !ok || got != os.Getpid() {
		t.Fatalf("FreshTgid: %d %v", got, ok)
	}
	if pi := c.Get(1 << 30); pi.Tgid != 1<<30 {
		t.Fatalf("a vanished thread should fall back to its tid: %+v", pi)
	}
}
