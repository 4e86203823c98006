package audit

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// recordConstants reads the field-name constants of audit.go, by prefix.
func recordConstants(t *testing.T) map[string]map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "audit.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	diagnostics := map[string]bool{"FieldNotifID": true, "FieldErr": true}
	out := map[string]map[string]bool{"Field": {}, "Arg": {}, "Kernel": {}}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING || diagnostics[name.Name] {
					continue
				}
				v, _ := strconv.Unquote(lit.Value)
				for prefix := range out {
					if strings.HasPrefix(name.Name, prefix) {
						out[prefix][v] = true
					}
				}
			}
		}
	}
	return out
}

// TestFieldConstantsAreTheRecordTags holds the constants the supervisor
// writes with equal to Record's JSON tags, both ways.
func TestFieldConstantsAreTheRecordTags(t *testing.T) {
	consts := recordConstants(t)
	for prefix, tags := range map[string]map[string]bool{"Field": recordKeys, "Arg": argsKeys, "Kernel": kernelKeys} {
		got, want := slices.Sorted(maps.Keys(consts[prefix])), slices.Sorted(maps.Keys(tags))
		if !slices.Equal(got, want) {
			t.Errorf("%s* constants %v, Record's tags %v", prefix, got, want)
		}
	}
}

func TestParseRecord(t *testing.T) {
	line := `{"level":"warn","time":"2026-12-02T10:03:06.121461123Z","pid":7,"tid":8,"comm":"cat",` +
		`"syscall":"openat","container":"c1","listener_metadata":"policy=web.yaml",` +
		`"args":{"path":"/etc/shadow","resolved":"/etc/shadow","dirfd":3,"flags":"O_RDONLY"},` +
		`"rule":"no-shadow","action":"deny","errno":"EACCES","emulated":false,"verified":"kernel",` +
		`"kernel":{"ret":-13,"dev":"254:0","ino":12,"reason":"arg_changed","replaced":true},` +
		`"withdrawn":true,"replayed":true,"latency_us":4.5}` + "\n"
	r, err := ParseRecord([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	three, ret := 3, int64(-13)
	want := Record{
		Time: time.Date(2026, 12, 2, 10, 3, 6, 121461123, time.UTC), Level: "warn",
		Pid: 7, Tid: 8, Comm: "cat", Syscall: "openat", Container: "c1", ListenerMetadata: "policy=web.yaml",
		Args: Args{Path: "/etc/shadow", Resolved: "/etc/shadow", Dirfd: &three, Flags: "O_RDONLY"},
		Rule: "no-shadow", Action: "deny", Errno: "EACCES", Verified: VerifiedKernel,
		Kernel:    &Kernel{Ret: &ret, Dev: "254:0", Ino: 12, Reason: "arg_changed", Replaced: true},
		Withdrawn: true, Replayed: true, LatencyUs: 4.5,
	}
	if !r.Time.Equal(want.Time) {
		t.Errorf("time %v, want %v", r.Time, want.Time)
	}
	r.Time = want.Time
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got  %+v\nwant %+v", r, want)
	}
}

func TestParseRecordRejects(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"", "empty line"},
		{"  \n", "empty line"},
		{`[1]`, "want a JSON object"},
		{`{"syscall":"openat"`, "unexpected EOF"},
		{`{"syscall":"openat","surprise":1}`, `unknown field "surprise"`},
		{`{"syscall":"openat","args":{"path":"/x","paht":"/y"}}`, `unknown field "paht"`},
		{`{"syscall":"openat","kernel":{"inode":1}}`, `unknown field "inode"`},
		{`{"syscall":"openat","Pid":1}`, `unknown field "Pid"`},
		{`{"syscall":"openat","args":{"Path":"/x"}}`, `unknown field "args.Path"`},
		{`{"syscall":"openat","pid":"1"}`, "Record.pid of type int"},
		{`{"syscall":"openat","withdrawn":"yes"}`, "Record.withdrawn of type bool"},
		{`{"syscall":"openat"} {}`, "data after the object"},
		{`{"pid":1}`, "not an audit record"},
		{`{"level":"warn","syscall":"openat","message":"kernel events lost"}`, "not an audit record"},
	} {
		_, err := ParseRecord([]byte(tc.line))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseRecord(%q) = %v, want an error saying %q", tc.line, err, tc.want)
		}
	}
}

func TestReaderSkipsDiagnostics(t *testing.T) {
	log := `{"level":"info","time":"2026-12-02T10:03:06Z","message":"supervising"}` + "\n" +
		`{"level":"debug","time":"2026-12-02T10:03:06Z","pid":1,"tid":1,"comm":"sh","syscall":"openat","rule":"default","action":"allow","emulated":false,"latency_us":1}` + "\n\n" +
		`{"level":"warn","time":"2026-12-02T10:03:07Z","pid":1,"tid":2,"comm":"sh","syscall":"connect","rule":"r","action":"deny","errno":"EPERM","emulated":false,"latency_us":2}` + "\n"
	recs, err := ReadRecords(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Syscall != "openat" || recs[1].Syscall != "connect" || recs[1].Tid != 2 {
		t.Fatalf("read %+v", recs)
	}
	_, err = ReadRecords(strings.NewReader(log + `{"syscall":"openat","pid":true}` + "\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "line 5: ") {
		t.Fatalf("a bad record: %v, want an error naming line 5", err)
	}
}

// normalize makes a parsed record comparable with its re-parse: times are
// compared as instants, and an empty list reads back as none.
func normalize(r *Record) {
	r.Time = r.Time.UTC()
	if len(r.Args.Raw) == 0 {
		r.Args.Raw = nil
	}
}

// FuzzParseRecord: ParseRecord never panics, and what it accepts survives
// encoding/json's round trip unchanged.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(`{"level":"debug","time":"2026-12-02T10:03:06.121461123Z","pid":1,"tid":1,"comm":"sh","syscall":"openat","args":{"path":"a","dirfd":3},"rule":"","action":"allow","emulated":false,"verified":"kernel","kernel":{"ret":3,"dev":"1:2","ino":4},"latency_us":1.5}`))
	f.Add([]byte(`{"level":"info","time":"2026-12-02T10:03:06.121461Z","pid":4242,"tid":4242,"comm":"w","syscall":"connect","args":{"fd":3,"addr":"127.0.0.1:80"},"ret":0,"kernel":{"peer":"127.0.0.1:80"},"latency_us":4.321,"phantom":false}`))
	f.Add([]byte(`{"syscall":"x","args":{"raw":[1,2,3,4,5,6]},"phantom":true,"phantom_reason":"r","error":"e"}`))
	f.Add([]byte(`{"syscall":"x","withdrawn":true,"replayed":true,"message":"m"}`))
	f.Add([]byte(`{"syscall":"x","kernel":null,"args":null}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseRecord(line)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "audit record") {
				t.Fatalf("error %q does not say it is about an audit record", err)
			}
			return
		}
		b, err := json.Marshal(r)
		if err != nil {
			// Only a time json cannot write (a year past 9999 or an
			// offset of a day) parses and fails to marshal.
			if !strings.Contains(err.Error(), "Time") {
				t.Fatalf("marshaling %+v: %v", r, err)
			}
			return
		}
		again, err := ParseRecord(b)
		if err != nil {
			t.Fatalf("re-parsing %s (from %q): %v", b, line, err)
		}
		normalize(&r)
		normalize(&again)
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("round trip of %q:\n%+v\n%+v", line, r, again)
		}
	})
}

// TestEscapeGivesTheBytesBack: a name that is not UTF-8 is written escaped
// and read back byte for byte; names that differ only in such bytes stay
// different (U+FFFD made "\xff" and "\xfe" the same).
func TestEscapeGivesTheBytesBack(t *testing.T) {
	for _, s := range []string{"\xff", "\xfe", "a\xffb", `back\slash` + "\xff", "new\nline\xc3", "\x00\x1b[31m\xff", "é\xff"} {
		if !NeedsEscape(s) {
			t.Errorf("%q: NeedsEscape false", s)
		}
		e := Escape(s)
		if NeedsEscape(e) {
			t.Errorf("%q escaped as %q, not UTF-8", s, e)
		}
		got, err := Unescape(e)
		if err != nil || got != s {
			t.Errorf("%q escaped as %q reads back as %q, %v", s, e, got, err)
		}
	}
	if Escape("\xff") == Escape("\xfe") {
		t.Error("two names escape the same")
	}
	for _, s := range []string{"/etc/hostname", "é", `a\xffb`} {
		if NeedsEscape(s) {
			t.Errorf("%q is UTF-8, yet NeedsEscape", s)
		}
	}
	r, err := ParseRecord([]byte(`{"level":"debug","syscall":"rename","args":{"path":"\\xff","path2":"b","escaped":["path"]},"kernel":{"path":"\\xfe","path_escaped":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Args.Escaped) != 1 || r.Args.Escaped[0] != "path" || r.Kernel == nil || !r.Kernel.PathEscaped {
		t.Errorf("escaped fields not read: %+v %+v", r.Args, r.Kernel)
	}
}
