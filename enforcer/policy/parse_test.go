package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// want is one expected error: its "line:col" and a fragment of its message.
type want struct {
	pos, msg string
}

func checkErrors(t *testing.T, src string, wants []want) {
	t.Helper()
	pol, err := Parse("p.yaml", []byte(src))
	if len(wants) == 0 {
		if err != nil {
			t.Fatalf("unexpected error:\n%v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %v (policy %+v)", wants, pol)
	}
	if pol != nil {
		t.Errorf("Parse returned a policy along with errors")
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, want ErrorList", err)
	}
	if len(list) != len(wants) {
		t.Fatalf("got %d errors, want %d:\n%v", len(list), len(wants), err)
	}
	for i, w := range wants {
		e := list[i]
		got := e.Pos.String()
		if got != "p.yaml:"+w.pos || !strings.Contains(e.Msg, w.msg) {
			t.Errorf("error %d = %q, want p.yaml:%s: ...%s...", i, e.Error(), w.pos, w.msg)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		wants []want
	}{
		{"empty file", "", []want{{"1:1", "empty policy"}}},
		{"blank file", "\n  \n", []want{{"1:1", "empty policy"}}},
		{"comments only", "# nothing\n", []want{{"1:1", "only comments"}}},
		{"explicit null document", "---\n", []want{{"2:1", "empty policy"}}},
		{"not a mapping", "- a\n- b\n", []want{{"1:1", "the policy must be a mapping, got a list"}}},
		{"missing version", "default: allow\n", []want{{"1:1", `missing "version: 1"`}}},
		{"wrong version", "version: 2\n", []want{{"1:10", "unsupported version 2"}}},
		{"string version", "version: \"1\"\n", []want{{"1:10", `version must be the number 1, got the string "1"`}}},
		{"float version", "version: 1.0\n", []want{{"1:10", "version must be the number 1, got the number 1.0"}}},
		{"unknown top-level key", "version: 1\nrulez: []\n", []want{{"2:1", `unknown key "rulez" in the policy (did you mean "rules"?)`}}},
		{"duplicate key", "version: 1\nversion: 1\n", []want{{"2:1", `duplicate key "version" in the policy (first at 1:1)`}}},
		{"duplicate key in flow mapping", "{version: 1, default: deny, default: kill}", []want{{"1:29", `duplicate key "default"`}}},
		{"unknown default", "version: 1\ndefault: alow\n", []want{{"2:10", `unknown default "alow" (did you mean "allow"?)`}}},
		{"default emulate", "version: 1\ndefault: emulate\n", []want{{"2:10", "default must be allow, deny or kill"}}},
		{"default wrong type", "version: 1\ndefault: [deny]\n", []want{{"2:10", "default must be a string, got a list"}}},
		{"rules not a list", "version: 1\nrules: {a: 1}\n", []want{{"2:8", "rules must be a list"}}},
		{"rule not a mapping", "version: 1\nrules:\n  - open\n", []want{{"3:5", "rules[0] must be a mapping"}}},
		{"merge key", "version: 1\nrules:\n  - <<: {action: allow}\n    syscalls: [open]\n    action: allow\n", []want{{"3:5", "merge keys (<<) are not supported"}}},
		{"unknown rule key", "version: 1\nrules:\n  - syscall: [open]\n    action: allow\n", []want{
			{"3:5", `rules[0] needs syscalls`},
			{"3:5", `unknown key "syscall" in rules[0] (did you mean "syscalls"?)`},
		}},
		{"missing action", "version: 1\nrules:\n  - name: a\n    syscalls: [open]\n", []want{{"3:5", `rule "a" needs an action`}}},
		{"unknown action", "version: 1\nrules:\n  - syscalls: [open]\n    action: dney\n", []want{{"4:13", `unknown action "dney" (did you mean "deny"?)`}}},
		{"unknown syscall", "version: 1\nrules:\n  - syscalls: [open, opne]\n    action: deny\n", []want{{"3:22", `unknown syscall "opne" (did you mean "open"?)`}}},
		{"syscall not a string", "version: 1\nrules:\n  - syscalls: [open, 42]\n    action: deny\n", []want{{"3:22", "a syscall must be a string, got the number 42"}}},
		{"syscalls not a list", "version: 1\nrules:\n  - syscalls: open\n    action: deny\n", []want{{"3:15", "syscalls must be a list"}}},
		{"syscalls empty", "version: 1\nrules:\n  - syscalls: []\n    action: deny\n", []want{{"3:15", "syscalls must not be empty"}}},
		{"syscall twice", "version: 1\nrules:\n  - syscalls: [open, open]\n    action: deny\n", []want{{"3:22", `syscall "open" is listed twice`}}},
		{"unknown errno", "version: 1\nrules:\n  - syscalls: [open]\n    action: deny\n    errno: EACESS\n", []want{{"5:12", `unknown errno "EACESS" (did you mean "EACCES"?)`}}},
		{"numeric errno", "version: 1\nrules:\n  - syscalls: [open]\n    action: deny\n    errno: 13\n", []want{{"5:12", "errno must be a string, got the number 13"}}},
		{"errno without deny", "version: 1\nrules:\n  - syscalls: [open]\n    action: kill\n    errno: EPERM\n", []want{{"5:5", "errno applies only to action deny, not kill"}}},
		{"duplicate rule name", "version: 1\nrules:\n  - {name: a, syscalls: [open], action: deny}\n  - {name: a, syscalls: [openat], action: deny}\n", []want{{"4:12", `duplicate rule name "a" (first at 3:12)`}}},
		{"empty rule name", "version: 1\nrules:\n  - {name: \"\", syscalls: [open], action: deny}\n", []want{{"3:12", "empty rule name"}}},
		{"unknown match key", "version: 1\nrules:\n  - syscalls: [open]\n    match: {pth: [/x]}\n    action: deny\n", []want{{"4:13", `unknown key "pth" in match (did you mean "path"?)`}}},
		{"empty match", "version: 1\nrules:\n  - syscalls: [open]\n    match: {}\n    action: deny\n", []want{{"4:12", "empty match"}}},
		{"match not a mapping", "version: 1\nrules:\n  - syscalls: [open]\n    match: [/x]\n    action: deny\n", []want{{"4:12", "match must be a mapping"}}},
		{"key not for syscall", "version: 1\nrules:\n  - syscalls: [open, unlink]\n    match: {addr: [127.0.0.1]}\n    action: deny\n", []want{{"4:13", `match key "addr" does not apply to open, unlink; split the rule`}}},
		{"key not for one syscall", "version: 1\nrules:\n  - syscalls: [open, unlink]\n    match: {flags: {any: [O_CREAT]}}\n    action: deny\n", []want{{"4:13", `match key "flags" does not apply to unlink (it takes path)`}}},
		{"resolve outside openat2", "version: 1\nrules:\n  - syscalls: [openat]\n    match: {resolve: {any: [RESOLVE_BENEATH]}}\n    action: deny\n", []want{{"4:13", `match key "resolve" does not apply to openat (it takes path, flags)`}}},
		{"match on undecoded syscall", "version: 1\nrules:\n  - syscalls: [ptrace]\n    match: {path: [/x]}\n    action: deny\n", []want{
			{"3:16", `syscall "ptrace" cannot be matched on`},
		}},
		{"emulate undecoded syscall", "version: 1\nrules:\n  - syscalls: [ptrace]\n    action: emulate\n", []want{{"3:16", "action emulate needs a syscall vigil decodes"}}},
		{"mixed flag families", "version: 1\nrules:\n  - syscalls: [open, clone3]\n    match: {flags: {any: [O_CREAT]}}\n    action: deny\n", []want{{"4:13", "mixes syscalls taking O_* flags (open) and CLONE_* flags (clone3)"}}},
		{"unknown flag", "version: 1\nrules:\n  - syscalls: [open]\n    match: {flags: {any: [O_CREATE]}}\n    action: deny\n", []want{{"4:27", `unknown flag "O_CREATE" (did you mean "O_CREAT"?)`}}},
		{"flag of other family", "version: 1\nrules:\n  - syscalls: [clone3]\n    match: {flags: {all: [O_CREAT]}}\n    action: deny\n", []want{{"4:27", "O_CREAT is not one of the CLONE_* flags clone3 takes"}}},
		{"resolve flag in flags", "version: 1\nrules:\n  - syscalls: [openat2]\n    match: {flags: {none: [RESOLVE_BENEATH]}}\n    action: deny\n", []want{{"4:28", "RESOLVE_BENEATH is not one of the O_* flags openat2 takes"}}},
		{"unknown flags sub-key", "version: 1\nrules:\n  - syscalls: [open]\n    match: {flags: {some: [O_CREAT]}}\n    action: deny\n", []want{{"4:21", `unknown key "some" in flags`}}},
		{"empty flags", "version: 1\nrules:\n  - syscalls: [open]\n    match: {flags: {}}\n    action: deny\n", []want{{"4:20", "flags needs at least one of any, all, none"}}},
		{"flags as list", "version: 1\nrules:\n  - syscalls: [open]\n    match: {flags: [O_CREAT]}\n    action: deny\n", []want{{"4:20", "flags must be a mapping like {any: [...]}"}}},
		{"empty flag list", "version: 1\nrules:\n  - syscalls: [open]\n    match: {flags: {any: []}}\n    action: deny\n", []want{{"4:26", "flags.any must not be empty"}}},
		{"unknown resolve flag", "version: 1\nrules:\n  - syscalls: [openat2]\n    match: {resolve: {any: [RESOLVE_NO_XDEVS]}}\n    action: deny\n", []want{{"4:29", `unknown flag "RESOLVE_NO_XDEVS" (did you mean "RESOLVE_NO_XDEV"?)`}}},
		{"relative glob", "version: 1\nrules:\n  - syscalls: [open]\n    match: {path: [etc/shadow]}\n    action: deny\n", []want{{"4:20", "path pattern must be absolute"}}},
		{"empty glob", "version: 1\nrules:\n  - syscalls: [open]\n    match: {path: [\"\"]}\n    action: deny\n", []want{{"4:20", "empty path pattern"}}},
		{"globstar inside component", "version: 1\nrules:\n  - syscalls: [open]\n    match: {path: [/a/b**]}\n    action: deny\n", []want{{"4:20", "** must be a whole path component"}}},
		{"NUL in glob", "version: 1\nrules:\n  - syscalls: [open]\n    match: {path: [\"/a\\0b\"]}\n    action: deny\n", []want{{"4:20", "NUL byte"}}},
		{"trailing slash glob", "version: 1\nrules:\n  - syscalls: [open]\n    match: {path: [/etc/]}\n    action: deny\n", []want{{"4:20", "ends in '/'"}}},
		{"dotdot glob", "version: 1\nrules:\n  - syscalls: [open]\n    match: {path: [/etc/../x]}\n    action: deny\n", []want{{"4:20", `has a .. component`}}},
		{"path not a list", "version: 1\nrules:\n  - syscalls: [open]\n    match: {path: /etc/shadow}\n    action: deny\n", []want{{"4:19", "path must be a list"}}},
		{"bad CIDR", "version: 1\nrules:\n  - syscalls: [connect]\n    match: {addr: [10.0.0.0/33]}\n    action: deny\n", []want{{"4:20", `invalid CIDR "10.0.0.0/33"`}}},
		{"host bits", "version: 1\nrules:\n  - syscalls: [connect]\n    match: {addr: [10.1.2.3/8]}\n    action: deny\n", []want{{"4:20", "did you mean 10.0.0.0/8?"}}},
		{"bad address", "version: 1\nrules:\n  - syscalls: [connect]\n    match: {addr: [localhost]}\n    action: deny\n", []want{{"4:20", `invalid IP address "localhost"`}}},
		{"bad port", "version: 1\nrules:\n  - syscalls: [connect]\n    match: {addr: [\"127.0.0.1:65536\"]}\n    action: deny\n", []want{{"4:20", `invalid port "65536"`}}},
		{"empty port", "version: 1\nrules:\n  - syscalls: [connect]\n    match: {addr: [\"127.0.0.1:\"]}\n    action: deny\n", []want{{"4:20", `invalid port ""`}}},
		{"bracketed prefix", "version: 1\nrules:\n  - syscalls: [connect]\n    match: {addr: [\"[fd00::]/8\"]}\n    action: deny\n", []want{{"4:20", "write [fd00::/8]"}}},
		{"unclosed bracket", "version: 1\nrules:\n  - syscalls: [connect]\n    match: {addr: [\"[::1:22\"]}\n    action: deny\n", []want{{"4:20", "missing ]"}}},
		{"brackets around IPv4", "version: 1\nrules:\n  - syscalls: [connect]\n    match: {addr: [\"[1.2.3.4]:80\"]}\n    action: deny\n", []want{{"4:20", "brackets are for IPv6"}}},
		{"zone", "version: 1\nrules:\n  - syscalls: [connect]\n    match: {addr: [\"fe80::1%eth0\"]}\n    action: deny\n", []want{{"4:20", "zoned addresses"}}},
		{"relative unix path", "version: 1\nrules:\n  - syscalls: [connect]\n    match: {addr: [\"unix:run/x.sock\"]}\n    action: deny\n", []want{{"4:20", "unix socket path: path pattern must be absolute"}}},
		{"empty abstract", "version: 1\nrules:\n  - syscalls: [connect]\n    match: {addr: [\"unix:@\"]}\n    action: deny\n", []want{{"4:20", "empty abstract socket name"}}},
		{"bad dev type", "version: 1\nrules:\n  - syscalls: [mknod]\n    match: {dev: [\"p 1:3\"]}\n    action: deny\n", []want{{"4:19", `invalid device type "p"`}}},
		{"bad dev spec", "version: 1\nrules:\n  - syscalls: [mknod]\n    match: {dev: [\"c 1\"]}\n    action: deny\n", []want{{"4:19", `invalid device number "1"`}}},
		{"dev major range", "version: 1\nrules:\n  - syscalls: [mknod]\n    match: {dev: [\"c 4096:0\"]}\n    action: deny\n", []want{{"4:19", "major 4096 is out of range (0-4095)"}}},
		{"dev minor range", "version: 1\nrules:\n  - syscalls: [mknod]\n    match: {dev: [\"b 8:1048576\"]}\n    action: deny\n", []want{{"4:19", "minor 1048576 is out of range"}}},
		{"dev wildcard major", "version: 1\nrules:\n  - syscalls: [mknod]\n    match: {dev: [\"c *:1\"]}\n    action: deny\n", []want{{"4:19", `major "*" is not a decimal number`}}},
		{"dev extra fields", "version: 1\nrules:\n  - syscalls: [mknod]\n    match: {dev: [\"c 1:3 x\"]}\n    action: deny\n", []want{{"4:19", `invalid device "c 1:3 x"`}}},
		{"xattr namespace", "version: 1\nrules:\n  - syscalls: [setxattr]\n    match: {xattr: [trustd.overlay.opaque]}\n    action: deny\n", []want{{"4:21", `unknown xattr namespace "trustd."`}}},
		{"empty xattr", "version: 1\nrules:\n  - syscalls: [setxattr]\n    match: {xattr: [\"\"]}\n    action: deny\n", []want{{"4:21", "empty xattr name"}}},
		{"yaml syntax", "version: 1\nrules:\n  - syscalls: [open\n    action: deny\n", []want{{"3", "invalid YAML: did not find expected ',' or ']'"}}},
		{"yaml bad indent", "version: 1\n  default: deny\n", []want{{"2", "invalid YAML: mapping values are not allowed"}}},
		{"yaml tab", "version: 1\nrules:\n\t- x\n", []want{{"3", "invalid YAML"}}},
		{"unknown alias", "version: 1\ndefault: *nope\n", []want{{"2:10", "alias *nope refers to no anchor"}}},
		{"second document", "version: 1\n---\nversion: 1\n", []want{{"2:1", "a policy is one YAML document"}}},
		{"NUL byte", "version: 1\x00\n", []want{{"1:11", "character U+0000 is not allowed"}}},
		{"invalid UTF-8", "version: 1\n# caf\xe9\n", []want{{"2:6", "invalid UTF-8"}}},
		{"wrong value type in rule", "version: 1\nrules:\n  - syscalls: [open]\n    action: [deny]\n", []want{{"4:13", "action must be a string, got a list"}}},
		{"null value", "version: 1\nrules:\n  - syscalls: [open]\n    action:\n", []want{{"4:12", "action must be a string, got nothing (null)"}}},
		{"all errors reported", "version: 3\ndefault: maybe\nrules:\n  - syscalls: [nope]\n    action: allow\n  - syscalls: [open]\n    match: {path: [x]}\n    action: no\n", []want{
			{"1:10", "unsupported version 3"},
			{"2:10", `unknown default "maybe"`},
			{"4:16", `unknown syscall "nope"`},
			{"7:20", "path pattern must be absolute"},
			{"8:13", `unknown action "no"`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkErrors(t, tt.src, tt.wants) })
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct{ name, src string }{
		{"minimal", "version: 1\n"},
		{"no rules value", "version: 1\nrules:\n"},
		{"design example", designExample},
		{"aliases reuse a list", "version: 1\nrules:\n  - syscalls: [open]\n    match: {path: &sys [/usr/**, /bin/**]}\n    action: deny\n  - syscalls: [unlink]\n    match: {path: *sys}\n    action: deny\n"},
		{"all errno spellings", "version: 1\nrules:\n  - {syscalls: [open], action: deny, errno: EWOULDBLOCK}\n  - {syscalls: [openat], action: deny, errno: ENOTSUP}\n  - {syscalls: [creat], action: deny, errno: EHWPOISON}\n"},
		{"undecoded syscall without match", "version: 1\nrules:\n  - {syscalls: [ptrace, io_uring_setup], action: deny}\n"},
		{"BOM", "\ufeffversion: 1\n"},
		{"CRLF", "version: 1\r\nrules:\r\n  - {syscalls: [open], action: log}\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkErrors(t, tt.src, nil) })
	}
}

// designExample is the example of docs/design.md §5; it must stay valid.
const designExample = `version: 1
default: allow            # verdict for a trapped syscall that matches no rule: allow | deny | kill
rules:                    # first match wins
  - name: no-shadow       # optional; appears in audit records
    syscalls: [open, openat, openat2]
    match:
      path: ["/etc/shadow", "/etc/gshadow", "/root/**"]   # resolved object; * within a component, ** across
      flags: { any: [O_WRONLY, O_RDWR, O_CREAT, O_TRUNC] } # optional: any / all / none of named flags
    action: deny
    errno: EACCES                                         # default EPERM
  - syscalls: [connect]
    match: { addr: ["10.0.0.0/8", "127.0.0.1:6379", "[::1]:22", "unix:/run/docker.sock"] }
    action: deny
  - syscalls: [mknod, mknodat]
    match: { dev: ["c 1:3", "c 1:5", "c 1:7", "c 1:8", "c 1:9", "c 5:0", "c 5:1", "c 5:2"] }
    action: emulate
  - syscalls: [setxattr, lsetxattr, fsetxattr]
    match: { xattr: ["trusted.overlay.opaque", "trusted.overlay.redirect"] }
    action: emulate
  - syscalls: [clone3]
    match: { flags: { any: [CLONE_NEWUSER] } }            # clone_args.flags
    action: deny
  - syscalls: [openat2]
    match: { resolve: { none: [RESOLVE_BENEATH, RESOLVE_IN_ROOT] } }
    action: allow
`

func TestParseFields(t *testing.T) {
	pol, err := Parse("d.yaml", []byte(designExample))
	if err != nil {
		t.Fatal(err)
	}
	if pol.Version != 1 || pol.Default != ActionAllow || pol.File != "d.yaml" || len(pol.Rules) != 6 {
		t.Fatalf("policy = %+v", pol)
	}
	r := pol.Rules[0]
	if r.Index != 0 || r.Name != "no-shadow" || r.Action != ActionDeny || r.Errno != unix.EACCES ||
		r.Pos != (Position{"d.yaml", 4, 5}) || strings.Join(r.Syscalls, ",") != "open,openat,openat2" {
		t.Errorf("rule 0 = %+v", r)
	}
	if r := pol.Rules[1]; r.Errno != unix.EPERM || r.String() != "rules[1]" || r.Index != 1 {
		t.Errorf("rule 1: errno %v, label %q, want EPERM, rules[1]", r.Errno, r.String())
	}
	if r := pol.Rules[2]; r.Errno != 0 || r.Action != ActionEmulate {
		t.Errorf("emulate rule errno = %v, want 0", r.Errno)
	}
}

func TestErrnoTable(t *testing.T) {
	if len(errnoByName) < 130 {
		t.Errorf("errno table has %d names, want the ~133 Linux errnos", len(errnoByName))
	}
	for name, e := range map[string]unix.Errno{"EPERM": unix.EPERM, "EACCES": unix.EACCES, "ENOENT": unix.ENOENT,
		"EAGAIN": unix.EAGAIN, "EWOULDBLOCK": unix.EAGAIN, "EOPNOTSUPP": unix.EOPNOTSUPP, "ENOSYS": unix.ENOSYS} {
		if errnoByName[name] != e {
			t.Errorf("errnoByName[%s] = %d, want %d", name, errnoByName[name], e)
		}
	}
}

func TestErrorFormatting(t *testing.T) {
	list := ErrorList{
		{Pos: Position{"a.yaml", 3, 5}, Msg: "second"},
		{Pos: Position{"a.yaml", 1, 0}, Msg: "first"},
	}.sort()
	if got, want := list.Error(), "a.yaml:1: first\na.yaml:3:5: second"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var e *Error
	if !errors.As(error(list), &e) || e.Msg != "first" {
		t.Errorf("errors.As did not find the first *Error")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("version: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("version: 1\nfoo: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := Load(good); err != nil || p.File != good {
		t.Errorf("Load(good) = %v, %v", p, err)
	}
	_, err := Load(bad)
	if err == nil || !strings.HasPrefix(err.Error(), bad+":2:1: unknown key") {
		t.Errorf("Load(bad) error = %v, want it to start with %s:2:1", err, bad)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want ErrNotExist", err)
	}
}

func TestAliasExpansionIsBounded(t *testing.T) {
	// 2000 rules aliasing one rule whose path list aliases 1000 patterns:
	// two million glob visits from a ~20 KB file.
	var b strings.Builder
	b.WriteString("version: 1\nrules:\n  - &r {syscalls: [open], action: deny, match: {path: &p [")
	for i := range 1000 {
		fmt.Fprintf(&b, "/p%d,", i)
	}
	b.WriteString("]}}\n")
	for range 2000 {
		b.WriteString("  - *r\n")
	}
	_, err := Parse("big.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("err = %v, want the node budget error", err)
	}
}
