package policy

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

func mustParse(t testing.TB, src string) *Policy {
	t.Helper()
	p, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return p
}

func nr(t testing.TB, name string) int {
	t.Helper()
	n, ok := sysinfo.Number(name)
	if !ok {
		t.Fatalf("no syscall %q", name)
	}
	return n
}

// verdict is a compact expectation: the rule name ("" for the default) and
// the action.
type verdict struct {
	rule   string
	action Action
}

func evaluate(p *Policy, c *Call) verdict {
	d := p.Evaluate(c)
	if d.Rule == nil {
		return verdict{"", d.Action}
	}
	return verdict{d.Rule.Name, d.Action}
}

func TestEvaluatePath(t *testing.T) {
	p := mustParse(t, `version: 1
default: deny
rules:
  - name: secret
    syscalls: [openat, rename]
    match: {path: [/etc/shadow, /root/**, "/home/*/.ssh/**"]}
    action: kill
  - name: rest
    syscalls: [openat, rename]
    action: allow
`)
	openat, rename, open := nr(t, "openat"), nr(t, "rename"), nr(t, "open")
	tests := []struct {
		c    Call
		want verdict
	}{
		{Call{Nr: openat, Path: "/etc/shadow"}, verdict{"secret", ActionKill}},
		{Call{Nr: openat, Path: "/etc/hostname"}, verdict{"rest", ActionAllow}},
		{Call{Nr: openat, Path: "/root"}, verdict{"secret", ActionKill}},
		{Call{Nr: openat, Path: "/root/.bashrc"}, verdict{"secret", ActionKill}},
		{Call{Nr: openat, Path: "/home/bob/.ssh/id_rsa"}, verdict{"secret", ActionKill}},
		{Call{Nr: openat, Path: "/home/bob/ssh"}, verdict{"rest", ActionAllow}},
		{Call{Nr: openat}, verdict{"rest", ActionAllow}}, // no path: the path key does not hold
		// Path2 (rename destination) matches as well as Path.
		{Call{Nr: rename, Path: "/tmp/x", Path2: "/etc/shadow"}, verdict{"secret", ActionKill}},
		{Call{Nr: rename, Path: "/root/x", Path2: "/tmp/x"}, verdict{"secret", ActionKill}},
		{Call{Nr: rename, Path: "/tmp/x", Path2: "/tmp/y"}, verdict{"rest", ActionAllow}},
		// A syscall no rule names gets the default (it would not be trapped).
		{Call{Nr: open, Path: "/etc/shadow"}, verdict{"", ActionDeny}},
		{Call{Nr: -1}, verdict{"", ActionDeny}},
		{Call{Nr: 1 << 20}, verdict{"", ActionDeny}},
	}
	for _, tt := range tests {
		if got := evaluate(p, &tt.c); got != tt.want {
			t.Errorf("Evaluate(%+v) = %v, want %v", tt.c, got, tt.want)
		}
	}
}

func TestEvaluateOpenFlags(t *testing.T) {
	p := mustParse(t, `version: 1
rules:
  - name: any
    syscalls: [open]
    match: {flags: {any: [O_WRONLY, O_RDWR, O_CREAT, O_TRUNC]}}
    action: deny
  - name: rdonly
    syscalls: [openat]
    match: {flags: {all: [O_RDONLY]}}
    action: deny
  - name: all-none
    syscalls: [creat]
    match: {flags: {all: [O_CREAT, O_EXCL], none: [O_NOFOLLOW]}}
    action: deny
  - name: tmpfile
    syscalls: [openat2]
    match: {flags: {any: [O_TMPFILE]}}
    action: deny
  - name: sync
    syscalls: [openat2]
    match: {flags: {any: [O_SYNC, O_LARGEFILE]}}
    action: kill
  - name: directory
    syscalls: [openat2]
    match: {flags: {any: [O_DIRECTORY]}}
    action: log
`)
	open, openat, creat, openat2 := nr(t, "open"), nr(t, "openat"), nr(t, "creat"), nr(t, "openat2")
	tests := []struct {
		name string
		c    Call
		want verdict
	}{
		{"rdonly not in any", Call{Nr: open, Flags: unix.O_RDONLY | unix.O_CLOEXEC, HasFlags: true}, verdict{"", ActionAllow}},
		{"wronly", Call{Nr: open, Flags: unix.O_WRONLY, HasFlags: true}, verdict{"any", ActionDeny}},
		{"rdwr", Call{Nr: open, Flags: unix.O_RDWR, HasFlags: true}, verdict{"any", ActionDeny}},
		{"accmode 3 counts as rdwr", Call{Nr: open, Flags: 3, HasFlags: true}, verdict{"any", ActionDeny}},
		{"trunc with rdonly", Call{Nr: open, Flags: unix.O_RDONLY | unix.O_TRUNC, HasFlags: true}, verdict{"any", ActionDeny}},
		{"flags not decoded", Call{Nr: open, Flags: unix.O_WRONLY}, verdict{"", ActionAllow}},
		{"O_RDONLY is the access mode, not bit 0", Call{Nr: openat, Flags: unix.O_CREAT | unix.O_EXCL, HasFlags: true}, verdict{"rdonly", ActionDeny}},
		{"O_RDONLY does not hold for wronly", Call{Nr: openat, Flags: unix.O_WRONLY, HasFlags: true}, verdict{"", ActionAllow}},
		{"O_RDONLY does not hold for rdwr", Call{Nr: openat, Flags: unix.O_RDWR, HasFlags: true}, verdict{"", ActionAllow}},
		{"all and none hold", Call{Nr: creat, Flags: unix.O_CREAT | unix.O_EXCL | unix.O_WRONLY, HasFlags: true}, verdict{"all-none", ActionDeny}},
		{"all misses one", Call{Nr: creat, Flags: unix.O_CREAT | unix.O_WRONLY | unix.O_TRUNC, HasFlags: true}, verdict{"", ActionAllow}},
		{"none fails", Call{Nr: creat, Flags: unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW, HasFlags: true}, verdict{"", ActionAllow}},
		{"O_TMPFILE needs both bits", Call{Nr: openat2, Flags: unix.O_TMPFILE | unix.O_RDWR, HasFlags: true}, verdict{"tmpfile", ActionDeny}},
		{"O_DIRECTORY alone is not O_TMPFILE", Call{Nr: openat2, Flags: unix.O_DIRECTORY, HasFlags: true}, verdict{"directory", ActionLog}},
		{"O_DSYNC alone is not O_SYNC", Call{Nr: openat2, Flags: unix.O_DSYNC, HasFlags: true}, verdict{"", ActionAllow}},
		{"O_SYNC", Call{Nr: openat2, Flags: unix.O_SYNC, HasFlags: true}, verdict{"sync", ActionKill}},
		{"O_LARGEFILE is the kernel's bit", Call{Nr: openat2, Flags: 0o100000, HasFlags: true}, verdict{"sync", ActionKill}},
	}
	for _, tt := range tests {
		if got := evaluate(p, &tt.c); got != tt.want {
			t.Errorf("%s: Evaluate(flags %#x) = %v, want %v", tt.name, tt.c.Flags, got, tt.want)
		}
	}
}

func TestEvaluateCloneFlags(t *testing.T) {
	p := mustParse(t, `version: 1
rules:
  - name: userns
    syscalls: [clone, clone3]
    match: {flags: {any: [CLONE_NEWUSER, CLONE_NEWTIME, CLONE_INTO_CGROUP]}}
    action: deny
  - name: threads
    syscalls: [clone, clone3]
    match: {flags: {all: [CLONE_THREAD, CLONE_VM]}}
    action: allow
  - name: others
    syscalls: [clone, clone3]
    action: log
`)
	clone, clone3 := nr(t, "clone"), nr(t, "clone3")
	tests := []struct {
		name string
		c    Call
		want verdict
	}{
		{"clone3 newuser", Call{Nr: clone3, Flags: unix.CLONE_NEWUSER, HasFlags: true}, verdict{"userns", ActionDeny}},
		{"clone newuser with exit signal", Call{Nr: clone, Flags: unix.CLONE_NEWUSER | uint64(unix.SIGCHLD), HasFlags: true}, verdict{"userns", ActionDeny}},
		{"clone3 newtime", Call{Nr: clone3, Flags: unix.CLONE_NEWTIME, HasFlags: true}, verdict{"userns", ActionDeny}},
		{"clone3 into cgroup", Call{Nr: clone3, Flags: unix.CLONE_INTO_CGROUP, HasFlags: true}, verdict{"userns", ActionDeny}},
		// For clone(2) the kernel reads 0x80 as part of the exit signal
		// and ignores the upper 32 bits, so neither is a flag.
		{"clone low byte is a signal", Call{Nr: clone, Flags: 0x80, HasFlags: true}, verdict{"others", ActionLog}},
		{"clone upper bits ignored", Call{Nr: clone, Flags: unix.CLONE_INTO_CGROUP, HasFlags: true}, verdict{"others", ActionLog}},
		{"thread", Call{Nr: clone, Flags: unix.CLONE_THREAD | unix.CLONE_VM | unix.CLONE_SIGHAND, HasFlags: true}, verdict{"threads", ActionAllow}},
		{"fork", Call{Nr: clone, Flags: uint64(unix.SIGCHLD), HasFlags: true}, verdict{"others", ActionLog}},
	}
	for _, tt := range tests {
		if got := evaluate(p, &tt.c); got != tt.want {
			t.Errorf("%s: Evaluate(flags %#x) = %v, want %v", tt.name, tt.c.Flags, got, tt.want)
		}
	}
}

func TestEvaluateResolve(t *testing.T) {
	p := mustParse(t, `version: 1
default: deny
rules:
  - name: confined
    syscalls: [openat2]
    match: {resolve: {any: [RESOLVE_BENEATH, RESOLVE_IN_ROOT]}, flags: {none: [O_CREAT]}}
    action: allow
  - name: cached
    syscalls: [openat2]
    match: {resolve: {all: [RESOLVE_CACHED, RESOLVE_NO_XDEV]}}
    action: log
`)
	openat2 := nr(t, "openat2")
	tests := []struct {
		c    Call
		want verdict
	}{
		{Call{Nr: openat2, Resolve: unix.RESOLVE_BENEATH, HasFlags: true}, verdict{"confined", ActionAllow}},
		{Call{Nr: openat2, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS, HasFlags: true}, verdict{"confined", ActionAllow}},
		{Call{Nr: openat2, Resolve: unix.RESOLVE_BENEATH, Flags: unix.O_CREAT, HasFlags: true}, verdict{"", ActionDeny}},
		{Call{Nr: openat2, Resolve: unix.RESOLVE_BENEATH}, verdict{"", ActionDeny}}, // open_how not decoded
		{Call{Nr: openat2, Resolve: 0x20 | unix.RESOLVE_NO_XDEV, HasFlags: true}, verdict{"cached", ActionLog}},
		{Call{Nr: openat2, Resolve: 0x20, HasFlags: true}, verdict{"", ActionDeny}},
	}
	for _, tt := range tests {
		if got := evaluate(p, &tt.c); got != tt.want {
			t.Errorf("Evaluate(%+v) = %v, want %v", tt.c, got, tt.want)
		}
	}
}

func TestEvaluateAddr(t *testing.T) {
	p := mustParse(t, `version: 1
rules:
  - name: private
    syscalls: [connect, bind]
    match: {addr: ["10.0.0.0/8", "fd00::/8"]}
    action: deny
  - name: redis
    syscalls: [connect]
    match: {addr: ["127.0.0.1:6379", "[::1]:22", "192.168.0.0/16:443", "[2001:db8::/32]:53", "::ffff:172.16.0.0/108"]}
    action: kill
  - name: host
    syscalls: [connect]
    match: {addr: ["8.8.8.8", "2001:4860:4860::8888"]}
    action: log
  - name: docker
    syscalls: [connect]
    match: {addr: ["unix:/run/docker.sock", "unix:/run/user/*/bus", "unix:@dbus-*"]}
    action: emulate
  - name: any6
    syscalls: [bind]
    match: {addr: ["::/0"]}
    action: log
`)
	connect, bind := nr(t, "connect"), nr(t, "bind")
	ip := netip.MustParseAddr
	in4 := func(a string, port uint16) Sockaddr { return Sockaddr{Family: unix.AF_INET, IP: ip(a), Port: port} }
	in6 := func(a string, port uint16) Sockaddr { return Sockaddr{Family: unix.AF_INET6, IP: ip(a), Port: port} }
	un := func(path string, abstract bool) Sockaddr {
		return Sockaddr{Family: unix.AF_UNIX, UnixPath: path, Abstract: abstract}
	}
	tests := []struct {
		name string
		nr   int
		sa   Sockaddr
		want verdict
	}{
		{"cidr v4", connect, in4("10.1.2.3", 80), verdict{"private", ActionDeny}},
		{"cidr v4 outside", connect, in4("11.1.2.3", 80), verdict{"", ActionAllow}},
		{"cidr v6", connect, in6("fd12::1", 80), verdict{"private", ActionDeny}},
		{"v4-mapped matches v4 cidr", connect, in6("::ffff:10.1.2.3", 80), verdict{"private", ActionDeny}},
		{"v4-mapped matches v4 address:port", connect, in6("::ffff:127.0.0.1", 6379), verdict{"redis", ActionKill}},
		{"v4-mapped matches v4 host", connect, in6("::ffff:8.8.8.8", 53), verdict{"host", ActionLog}},
		{"mapped rule matches plain v4", connect, in4("172.16.5.5", 1), verdict{"redis", ActionKill}},
		{"mapped rule matches mapped v4", connect, in6("::ffff:172.16.5.5", 1), verdict{"redis", ActionKill}},
		{"v4 in AF_INET6 family without mapping", connect, Sockaddr{Family: unix.AF_INET6, IP: ip("10.0.0.1")}, verdict{"private", ActionDeny}},
		{"zone is ignored", connect, in6("fd00::1%eth0", 1), verdict{"private", ActionDeny}},
		{"port matches", connect, in4("127.0.0.1", 6379), verdict{"redis", ActionKill}},
		{"port differs", connect, in4("127.0.0.1", 6380), verdict{"", ActionAllow}},
		{"v6 port", connect, in6("::1", 22), verdict{"redis", ActionKill}},
		{"v6 port differs", connect, in6("::1", 23), verdict{"", ActionAllow}},
		{"cidr and port", connect, in4("192.168.1.1", 443), verdict{"redis", ActionKill}},
		{"cidr wrong port", connect, in4("192.168.1.1", 80), verdict{"", ActionAllow}},
		{"v6 cidr and port", connect, in6("2001:db8::5", 53), verdict{"redis", ActionKill}},
		{"bare host any port", connect, in4("8.8.8.8", 1234), verdict{"host", ActionLog}},
		{"bare v6 host", connect, in6("2001:4860:4860::8888", 443), verdict{"host", ActionLog}},
		// connect to 0.0.0.0 / :: reaches the loopback.
		{"unspecified v4 is loopback for connect", connect, in4("0.0.0.0", 6379), verdict{"redis", ActionKill}},
		{"unspecified v6 is loopback for connect", connect, in6("::", 22), verdict{"redis", ActionKill}},
		{"mapped unspecified is loopback", connect, in6("::ffff:0.0.0.0", 6379), verdict{"redis", ActionKill}},
		{"unspecified is not loopback for bind", bind, in4("0.0.0.0", 6379), verdict{"", ActionAllow}},
		{"::/0 is native v6 only", bind, in4("1.2.3.4", 80), verdict{"", ActionAllow}},
		{"::/0 v6", bind, in6("2001:db8::1", 80), verdict{"any6", ActionLog}},
		{"unix path", connect, un("/run/docker.sock", false), verdict{"docker", ActionEmulate}},
		{"unix glob", connect, un("/run/user/1000/bus", false), verdict{"docker", ActionEmulate}},
		{"unix path mismatch", connect, un("/run/docker.sock2", false), verdict{"", ActionAllow}},
		{"abstract name is not a path", connect, un("/run/docker.sock", true), verdict{"", ActionAllow}},
		{"abstract glob", connect, un("dbus-abc/x", true), verdict{"docker", ActionEmulate}},
		{"path is not abstract", connect, un("dbus-abc", false), verdict{"", ActionAllow}},
		{"other family", connect, Sockaddr{Family: unix.AF_NETLINK}, verdict{"", ActionAllow}},
		{"unix family ignores IP", connect, Sockaddr{Family: unix.AF_UNIX, IP: ip("10.0.0.1")}, verdict{"", ActionAllow}},
	}
	for _, tt := range tests {
		c := Call{Nr: tt.nr, Addr: tt.sa, HasAddr: true}
		if got := evaluate(p, &c); got != tt.want {
			t.Errorf("%s: Evaluate(%+v) = %v, want %v", tt.name, tt.sa, got, tt.want)
		}
	}
	c := Call{Nr: connect, Addr: in4("10.0.0.1", 1)}
	if got := evaluate(p, &c); got != (verdict{"", ActionAllow}) {
		t.Errorf("undecoded address matched: %v", got)
	}
}

func TestEvaluateDevAndXattr(t *testing.T) {
	p := mustParse(t, `version: 1
default: deny
rules:
  - name: null-and-ptys
    syscalls: [mknod, mknodat]
    match: {dev: ["c 1:3", "c 136:*", "b 8:0"]}
    action: emulate
  - name: overlay
    syscalls: [setxattr, lsetxattr, fsetxattr]
    match: {xattr: ["trusted.overlay.opaque", "user.*"]}
    action: emulate
  - name: overlay-path
    syscalls: [setxattr]
    match: {xattr: ["security.*"], path: [/var/lib/**]}
    action: allow
`)
	mknod, setxattr, fsetxattr := nr(t, "mknod"), nr(t, "setxattr"), nr(t, "fsetxattr")
	tests := []struct {
		name string
		c    Call
		want verdict
	}{
		{"char dev", Call{Nr: mknod, Dev: Dev{DevChar, 1, 3}, HasDev: true}, verdict{"null-and-ptys", ActionEmulate}},
		{"block vs char", Call{Nr: mknod, Dev: Dev{DevBlock, 1, 3}, HasDev: true}, verdict{"", ActionDeny}},
		{"minor wildcard", Call{Nr: mknod, Dev: Dev{DevChar, 136, 42}, HasDev: true}, verdict{"null-and-ptys", ActionEmulate}},
		{"major differs", Call{Nr: mknod, Dev: Dev{DevChar, 137, 42}, HasDev: true}, verdict{"", ActionDeny}},
		{"block dev", Call{Nr: mknod, Dev: Dev{DevBlock, 8, 0}, HasDev: true}, verdict{"null-and-ptys", ActionEmulate}},
		{"block minor", Call{Nr: mknod, Dev: Dev{DevBlock, 8, 1}, HasDev: true}, verdict{"", ActionDeny}},
		{"fifo", Call{Nr: mknod, Dev: Dev{Kind: DevOther}, HasDev: true}, verdict{"", ActionDeny}},
		{"dev undecoded", Call{Nr: mknod, Dev: Dev{DevChar, 1, 3}}, verdict{"", ActionDeny}},
		{"xattr exact", Call{Nr: fsetxattr, Xattr: "trusted.overlay.opaque", HasXattr: true}, verdict{"overlay", ActionEmulate}},
		{"xattr glob", Call{Nr: setxattr, Xattr: "user.mime_type", HasXattr: true}, verdict{"overlay", ActionEmulate}},
		{"xattr other", Call{Nr: setxattr, Xattr: "trusted.overlay.redirect", HasXattr: true}, verdict{"", ActionDeny}},
		{"xattr and path", Call{Nr: setxattr, Xattr: "security.selinux", HasXattr: true, Path: "/var/lib/x"}, verdict{"overlay-path", ActionAllow}},
		{"xattr but not path", Call{Nr: setxattr, Xattr: "security.selinux", HasXattr: true, Path: "/etc/x"}, verdict{"", ActionDeny}},
		{"xattr undecoded", Call{Nr: setxattr, Xattr: "user.x"}, verdict{"", ActionDeny}},
	}
	for _, tt := range tests {
		if got := evaluate(p, &tt.c); got != tt.want {
			t.Errorf("%s: Evaluate = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestFirstMatchWinsAndDecision(t *testing.T) {
	p := mustParse(t, `version: 1
default: kill
rules:
  - name: a
    syscalls: [unlink]
    match: {path: [/tmp/a]}
    action: deny
    errno: ENOENT
  - name: b
    syscalls: [unlink, rmdir]
    match: {path: [/tmp/**]}
    action: deny
  - name: c
    syscalls: [unlink]
    action: allow
  - name: d
    syscalls: [unlink]
    match: {path: [/never]}
    action: deny
`)
	unlink, rmdir := nr(t, "unlink"), nr(t, "rmdir")
	tests := []struct {
		c    Call
		want Decision
	}{
		{Call{Nr: unlink, Path: "/tmp/a"}, Decision{p.Rules[0], ActionDeny, unix.ENOENT}},
		{Call{Nr: unlink, Path: "/tmp/b"}, Decision{p.Rules[1], ActionDeny, unix.EPERM}},
		{Call{Nr: unlink, Path: "/never"}, Decision{p.Rules[2], ActionAllow, 0}},
		{Call{Nr: rmdir, Path: "/tmp/x"}, Decision{p.Rules[1], ActionDeny, unix.EPERM}},
		{Call{Nr: rmdir, Path: "/var"}, Decision{nil, ActionKill, 0}},
	}
	for _, tt := range tests {
		if got := p.Evaluate(&tt.c); got != tt.want {
			t.Errorf("Evaluate(%+v) = %+v, want %+v", tt.c, got, tt.want)
		}
	}
	pd := mustParse(t, "version: 1\ndefault: deny\nrules: [{syscalls: [open], match: {path: [/x]}, action: allow}]\n")
	if got := pd.Evaluate(&Call{Nr: nr(t, "open"), Path: "/y"}); got != (Decision{nil, ActionDeny, unix.EPERM}) {
		t.Errorf("default deny decision = %+v, want EPERM", got)
	}
}

func TestIndexQueries(t *testing.T) {
	p := mustParse(t, `version: 1
rules:
  - syscalls: [openat, ptrace]
    action: allow
  - syscalls: [openat, open]
    match: {path: [/x], flags: {any: [O_CREAT]}}
    action: deny
  - syscalls: [open, connect]
    action: log
  - syscalls: [open]
    match: {path: [/y]}
    action: deny
  - syscalls: [connect]
    match: {addr: [1.2.3.4]}
    action: deny
  - syscalls: [setxattr]
    match: {xattr: [user.x]}
    action: deny
  - syscalls: [setxattr]
    match: {path: [/z]}
    action: deny
`)
	want := []string{"connect", "open", "openat", "ptrace", "setxattr"}
	if got := p.Syscalls(); !slices.Equal(got, want) {
		t.Errorf("Syscalls() = %v, want %v", got, want)
	}
	p.Syscalls()[0] = "mutated"
	if p.Syscalls()[0] != "connect" {
		t.Errorf("Syscalls returned the internal slice")
	}
	tests := []struct {
		name    string
		needs   sysinfo.Key
		content bool
	}{
		{"openat", 0, false}, // first rule has no match: later ones unreachable
		{"ptrace", 0, false}, // only a match-less rule
		{"open", sysinfo.KeyPath | sysinfo.KeyFlags, true},     // stops at the log rule
		{"connect", 0, false},                                  // first rule has no match
		{"setxattr", sysinfo.KeyXattr | sysinfo.KeyPath, true}, // union of keys
		{"unlink", 0, false},                                   // no rule: not trapped
	}
	for _, tt := range tests {
		n := nr(t, tt.name)
		if got := p.Needs(n); got != tt.needs {
			t.Errorf("Needs(%s) = %b, want %b", tt.name, got, tt.needs)
		}
		if got := p.ContentDependent(n); got != tt.content {
			t.Errorf("ContentDependent(%s) = %v, want %v", tt.name, got, tt.content)
		}
	}
	if p.Needs(-5) != 0 || p.ContentDependent(100000) {
		t.Errorf("out-of-range numbers must report nothing")
	}
	if got := p.Rules[1].Keys(); got != sysinfo.KeyPath|sysinfo.KeyFlags {
		t.Errorf("Rule.Keys() = %b", got)
	}
}

func TestDefaultPolicyParses(t *testing.T) {
	p := Default()
	if p.Default != ActionAllow || p.Version != 1 {
		t.Fatalf("default policy = %+v", p)
	}
	names := map[string]bool{}
	for _, r := range p.Rules {
		names[r.Name] = true
	}
	for _, n := range []string{"credentials", "system-binaries-readonly", "exec", "connect"} {
		if !names[n] {
			t.Errorf("default policy lacks rule %q", n)
		}
	}
	if string(DefaultYAML()) != defaultYAML || !strings.Contains(defaultYAML, "version: 1") {
		t.Errorf("DefaultYAML does not return the embedded file")
	}
	b := DefaultYAML()
	b[0] = 'X'
	if DefaultYAML()[0] == 'X' {
		t.Errorf("DefaultYAML returned shared memory")
	}
	if Default() == p {
		t.Errorf("Default returned a shared *Policy")
	}
}

func TestDefaultPolicyVerdicts(t *testing.T) {
	p := Default()
	open, openat, openat2, creat := nr(t, "open"), nr(t, "openat"), nr(t, "openat2"), nr(t, "creat")
	unlink, rename, chmod, execve, connect, mkdir := nr(t, "unlink"), nr(t, "rename"), nr(t, "chmod"), nr(t, "execve"), nr(t, "connect"), nr(t, "mkdir")
	rd := func(n int, path string, flags uint64) Call {
		return Call{Nr: n, Path: path, Flags: flags, HasFlags: true}
	}
	tests := []struct {
		name string
		c    Call
		want Decision
	}{
		{"read shadow", rd(openat, "/etc/shadow", unix.O_RDONLY), Decision{p.Rules[0], ActionDeny, unix.EACCES}},
		{"read gshadow-", rd(open, "/etc/gshadow-", unix.O_RDONLY), Decision{p.Rules[0], ActionDeny, unix.EACCES}},
		{"sudoers.d", rd(openat2, "/etc/sudoers.d/90-cloud", unix.O_RDONLY), Decision{p.Rules[0], ActionDeny, unix.EACCES}},
		{"host key", rd(openat, "/etc/ssh/ssh_host_ed25519_key", unix.O_RDONLY), Decision{p.Rules[0], ActionDeny, unix.EACCES}},
		{"host public key", rd(openat, "/etc/ssh/ssh_host_ed25519_key.pub", unix.O_RDONLY), Decision{nil, ActionAllow, 0}},
		{"root ssh", rd(openat, "/root/.ssh/authorized_keys", unix.O_WRONLY|unix.O_APPEND), Decision{p.Rules[0], ActionDeny, unix.EACCES}},
		{"hostname", rd(openat, "/etc/hostname", unix.O_RDONLY), Decision{nil, ActionAllow, 0}},
		{"write ls", rd(openat, "/usr/bin/ls", unix.O_WRONLY), Decision{p.Rules[1], ActionDeny, unix.EACCES}},
		{"creat in /usr/lib", rd(creat, "/usr/lib/evil.so", unix.O_CREAT|unix.O_WRONLY|unix.O_TRUNC), Decision{p.Rules[1], ActionDeny, unix.EACCES}},
		{"read ls", rd(openat, "/usr/bin/ls", unix.O_RDONLY|unix.O_CLOEXEC), Decision{nil, ActionAllow, 0}},
		{"write tmp", rd(openat, "/tmp/out", unix.O_WRONLY|unix.O_CREAT), Decision{nil, ActionAllow, 0}},
		{"unlink ls", Call{Nr: unlink, Path: "/usr/bin/ls"}, Decision{p.Rules[2], ActionDeny, unix.EACCES}},
		{"rename over ls", Call{Nr: rename, Path: "/tmp/evil", Path2: "/usr/bin/ls"}, Decision{p.Rules[2], ActionDeny, unix.EACCES}},
		{"rename /etc", Call{Nr: rename, Path: "/etc", Path2: "/etc.old"}, Decision{p.Rules[2], ActionDeny, unix.EACCES}},
		{"chmod shadow", Call{Nr: chmod, Path: "/etc/shadow"}, Decision{p.Rules[2], ActionDeny, unix.EACCES}},
		{"mkdir in /tmp", Call{Nr: mkdir, Path: "/tmp/d"}, Decision{nil, ActionAllow, 0}},
		{"exec", Call{Nr: execve, Path: "/usr/bin/ls"}, Decision{p.Rules[3], ActionLog, 0}},
		{"connect", Call{Nr: connect}, Decision{p.Rules[4], ActionLog, 0}},
	}
	for _, tt := range tests {
		if got := p.Evaluate(&tt.c); got != tt.want {
			t.Errorf("%s: Evaluate = {%v %v %v}, want {%v %v %v}", tt.name, got.Rule, got.Action, got.Errno, tt.want.Rule, tt.want.Action, tt.want.Errno)
		}
	}
	if !p.ContentDependent(openat) || p.ContentDependent(execve) || p.ContentDependent(connect) {
		t.Errorf("ContentDependent: openat must be, execve and connect must not be")
	}
	if p.Needs(openat) != sysinfo.KeyPath|sysinfo.KeyFlags || p.Needs(unlink) != sysinfo.KeyPath || p.Needs(execve) != 0 {
		t.Errorf("Needs: openat %b, unlink %b, execve %b", p.Needs(openat), p.Needs(unlink), p.Needs(execve))
	}
}

func TestActionString(t *testing.T) {
	for a, want := range map[Action]string{ActionAllow: "allow", ActionDeny: "deny", ActionKill: "kill",
		ActionEmulate: "emulate", ActionLog: "log", 0: "Action(0)", 99: "Action(99)"} {
		if got := a.String(); got != want {
			t.Errorf("Action(%d).String() = %q, want %q", a, got, want)
		}
		if b, _ := a.MarshalText(); string(b) != want {
			t.Errorf("Action(%d).MarshalText() = %q", a, b)
		}
	}
	var zero Decision
	if zero.Action == ActionAllow {
		t.Errorf("the zero Decision must not read as allow")
	}
}

// benchCalls is a mix the default policy sees in practice: library loads,
// config reads, writes to /tmp, a denied credential read, an exec.
func benchCalls(tb testing.TB) []Call {
	openat, execve := nr(tb, "openat"), nr(tb, "execve")
	return []Call{
		{Nr: openat, Path: "/usr/lib/x86_64-linux-gnu/libc.so.6", Flags: unix.O_RDONLY | unix.O_CLOEXEC, HasFlags: true},
		{Nr: openat, Path: "/etc/ld.so.cache", Flags: unix.O_RDONLY | unix.O_CLOEXEC, HasFlags: true},
		{Nr: openat, Path: "/tmp/build/out.o", Flags: unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC, HasFlags: true},
		{Nr: openat, Path: "/etc/shadow", Flags: unix.O_RDONLY, HasFlags: true},
		{Nr: openat, Path: "/home/user/project/src/main.go", Flags: unix.O_RDONLY, HasFlags: true},
		{Nr: execve, Path: "/usr/bin/cc"},
	}
}

func TestEvaluateDoesNotAllocate(t *testing.T) {
	p := Default()
	calls := benchCalls(t)
	connect := Call{Nr: nr(t, "connect"), HasAddr: true, Addr: Sockaddr{Family: unix.AF_INET6, IP: netip.MustParseAddr("::ffff:10.0.0.1%eth0"), Port: 1}}
	pa := mustParse(t, `version: 1
rules:
  - syscalls: [connect]
    match: {addr: ["10.0.0.0/8:2", "[::1]:22", "unix:/run/**"]}
    action: deny
  - syscalls: [setxattr]
    match: {xattr: ["user.*x"], path: ["/a/**/b*"]}
    action: deny
  - syscalls: [mknod]
    match: {dev: ["c 1:*"]}
    action: deny
`)
	xattr := Call{Nr: nr(t, "setxattr"), Xattr: "user.abcx", HasXattr: true, Path: "/a/b/c/bd"}
	dev := Call{Nr: nr(t, "mknod"), Dev: Dev{DevChar, 1, 3}, HasDev: true}
	allocs := testing.AllocsPerRun(100, func() {
		for i := range calls {
			_ = p.Evaluate(&calls[i])
		}
		_ = pa.Evaluate(&connect)
		_ = pa.Evaluate(&xattr)
		_ = pa.Evaluate(&dev)
	})
	if allocs != 0 {
		t.Errorf("Evaluate allocates %v times per run, want 0", allocs)
	}
}

func BenchmarkEvaluate(b *testing.B) {
	p := Default()
	calls := benchCalls(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_ = p.Evaluate(&calls[i%len(calls)])
	}
}

func BenchmarkEvaluateWorstCase(b *testing.B) {
	// An openat of a path that no default rule matches has to try every
	// glob of both open rules.
	p := Default()
	c := Call{Nr: nr(b, "openat"), Path: "/home/user/project/src/main.go", Flags: unix.O_WRONLY, HasFlags: true}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Evaluate(&c)
	}
}

func BenchmarkParseDefault(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Default()
	}
}

func TestAddrRulesOnSends(t *testing.T) {
	p := mustParse(t, `version: 1
rules:
  - name: no-metadata
    syscalls: [sendto, sendmsg, sendmmsg]
    match: {addr: ["169.254.169.254", "127.0.0.1:53"]}
    action: deny
  - syscalls: [connect]
    action: log
`)
	in4 := func(a string, port uint16) Sockaddr {
		return Sockaddr{Family: unix.AF_INET, IP: netip.MustParseAddr(a), Port: port}
	}
	for _, name := range []string{"sendto", "sendmsg", "sendmmsg"} {
		n := nr(t, name)
		if !p.Names(n) || !p.ContentDependent(n) || !p.Needs(n).Has(sysinfo.KeyAddr) {
			t.Fatalf("%s: named %v, content dependent %v, needs %v", name, p.Names(n), p.ContentDependent(n), p.Needs(n))
		}
		for _, tc := range []struct {
			sa   Sockaddr
			want verdict
		}{
			{in4("169.254.169.254", 80), verdict{"no-metadata", ActionDeny}},
			{in4("0.0.0.0", 53), verdict{"no-metadata", ActionDeny}}, // a send to 0.0.0.0 reaches loopback too
			{in4("127.0.0.1", 54), verdict{"", ActionAllow}},
		} {
			c := Call{Nr: n, Addr: tc.sa, HasAddr: true}
			if got := evaluate(p, &c); got != tc.want {
				t.Errorf("%s to %v: %v, want %v", name, tc.sa.IP, got, tc.want)
			}
		}
	}
	if p.Names(nr(t, "write")) || !p.Names(nr(t, "connect")) || p.ContentDependent(nr(t, "connect")) {
		t.Error("Names/ContentDependent of write and connect")
	}
	if _, err := Parse("t.yaml", []byte("version: 1\nrules:\n  - syscalls: [write]\n    match: {addr: [\"10.0.0.0/8\"]}\n    action: deny\n")); err == nil {
		t.Error("addr on write accepted")
	}
}
