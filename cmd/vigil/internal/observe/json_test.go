package observe

import (
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/loader"
)

func TestAppendJSONString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain/path", `"plain/path"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"tab\tnl\n\x01", `"tab\tnl\n\u0001"`},
		{"\xff\xfeok", `"\ufffd\ufffdok"`},
		{"é", `"é"`},
	} {
		if got := string(appendJSONString(nil, []byte(c.in))); got != c.want {
			t.Errorf("appendJSONString(%q) = %s, want %s", c.in, got, c.want)
		}
		if got := string(appendJSONString(nil, c.in)); got != c.want {
			t.Errorf("appendJSONString(string %q) = %s, want %s", c.in, got, c.want)
		}
	}
}

// FuzzAppendJSONString: any bytes (a path is any bytes but NUL and '/')
// make a valid JSON string that decodes to the input when it is UTF-8.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a", "\x00\x1f\"\\", "\xff", "日本", "\u2028"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out := appendJSONString(nil, b)
		var s string
		if err := json.Unmarshal(out, &s); err != nil {
			t.Fatalf("%q encodes as %s, not JSON: %v", b, out, err)
		}
		if utf8.Valid(b) && s != string(b) {
			t.Fatalf("%q round-trips as %q", b, s)
		}
	})
}

func TestClockAppend(t *testing.T) {
	c := &clock{offset: 1_700_000_000_123_456_789, sec: -1}
	got := string(c.append(nil, 1_000))
	if got != "2023-11-14T22:13:20.123457Z" && got != "2023-11-14T22:13:20.123456Z" {
		t.Fatalf("clock.append = %s", got)
	}
	if _, err := time.Parse(time.RFC3339Nano, got); err != nil {
		t.Fatal(err)
	}
	if got := string(appendMicros(nil, 12_345)); got != "12.345" {
		t.Fatalf("appendMicros = %s", got)
	}
	if got := string(appendMicros(nil, 7)); got != "0.007" {
		t.Fatalf("appendMicros = %s", got)
	}
	if !strings.HasPrefix(errnoName(-2), "ENOENT") || errnoName(-512) != "ERESTARTSYS" || errnoName(3) != "" {
		t.Fatal("errnoName")
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{"16M": 16 << 20, "4096": 4096, "1GiB": 1 << 30, "64 MiB": 64 << 20, "8k": 8 << 10, "2MB": 2 << 20} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "-1", "0", "1T", "3G", "x16M", "16MM", "99999999999999999999"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"16M", "1GiB", "4096", "", "-5k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && (n <= 0 || n > 1<<31) {
			t.Fatalf("ParseSize(%q) = %d without error", s, n)
		}
	})
}

// TestAppendRecordOfAnOpen encodes a synthetic openat record and reads it
// back with encoding/json.
func TestAppendRecordOfAnOpen(t *testing.T) {
	rec := syntheticOpen(t, "/tmp/dir")
	binary.LittleEndian.PutUint64(rec[40:], unix.O_RDONLY|unix.O_DIRECTORY) // args[2]
	o, err := New(Config{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	c, err := loader.ParseCall(rec)
	if err != nil {
		t.Fatal(err)
	}
	line := o.appendRecord(nil, c, Literal, "")
	r, err := audit.ParseRecord(line)
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	a, k := r.Args, r.Kernel
	switch {
	case r.Pid != 4242 || r.Comm != "workload" || r.Syscall != "openat" || r.Ret == nil || *r.Ret != 3:
		t.Errorf("header fields: %s", line)
	case a.Path != "/tmp/dir" || a.Flags != "O_RDONLY|O_DIRECTORY" || a.Mode != "":
		t.Errorf("args (no mode without O_CREAT or O_TMPFILE): %s", line)
	case k == nil || k.Path != "/tmp/dir" || k.Dev != "254:0" || k.Ino != 1234:
		t.Errorf("kernel: %s", line)
	case r.LatencyUs != 4.321 || r.Phantom || r.CaptureError != "":
		t.Errorf("latency, phantom, error: %s", line)
	}
}

// TestAppendRecordEscapesNamesThatAreNotUTF8: a path of any bytes is written
// escaped and listed as such (args.escaped, kernel.path_escaped), so the
// record gives the bytes back; with U+FFFD two names could read the same.
func TestAppendRecordEscapesNamesThatAreNotUTF8(t *testing.T) {
	const name = "/tmp/\xff\xfe"
	o, err := New(Config{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	rec := syntheticOpen(t, name)
	copy(rec[224:], "work\xffload\x00") // a comm of any bytes (PR_SET_NAME)
	c, err := loader.ParseCall(rec)
	if err != nil {
		t.Fatal(err)
	}
	line := o.appendRecord(nil, c, Literal, "")
	r, err := audit.ParseRecord(line)
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	if comm, err := audit.Unescape(r.Comm); !r.CommEscaped || err != nil || comm != "work\xffload" {
		t.Errorf("comm %q (escaped %v) reads back as %q, %v", r.Comm, r.CommEscaped, comm, err)
	}
	if len(r.Args.Escaped) != 1 || r.Args.Escaped[0] != audit.ArgPath || r.Kernel == nil || !r.Kernel.PathEscaped {
		t.Fatalf("escaped fields not marked: %s", line)
	}
	for _, s := range []string{r.Args.Path, r.Kernel.Path} {
		if got, err := audit.Unescape(s); err != nil || got != name {
			t.Errorf("%q reads back as %q, %v: %s", s, got, err, line)
		}
	}
}
