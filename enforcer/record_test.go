package enforcer

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

// recordCase is one kind of record the supervisor writes, and what its
// parse must hold.
type recordCase struct {
	name  string
	d     decision
	k     *kernelView
	check func(t *testing.T, r audit.Record)
}

func pathCall(path, resolved string, dirfd int) callView {
	return callView{paths: [2]string{path}, resolved: [2]string{resolved}, dirfds: [2]int{dirfd, unix.AT_FDCWD}, nPaths: 1}
}

// recordWith returns an allow of openat changed by f.
func recordWith(f func(d *decision)) decision {
	d := decision{level: zerolog.DebugLevel, tgid: 10, tid: 11, comm: "probe", syscall: "openat",
		rule: "default", action: policy.ActionAllow, latency: 1500 * time.Nanosecond}
	f(&d)
	return d
}

// recordCases covers every kind of record: allow, log, deny, kill,
// emulated, bound confirmation, mismatch, unconfirmed, withdrawn,
// replayed, refused, bad input, and each argument the records show.
func recordCases() []recordCase {
	return append(append(actionCases(), argumentCases()...), kernelCases()...)
}

// actionCases are the records of each action and answer.
func actionCases() []recordCase {
	with := recordWith
	open := pathCall("link", "/etc/ok", 3)
	open.flagSet, open.pc = sysinfo.FlagsOpen, policy.Call{HasFlags: true, Flags: unix.O_RDONLY, Resolve: unix.RESOLVE_BENEATH}
	return []recordCase{
		{name: "allow", d: with(func(d *decision) { d.hasCall, d.call, d.verified = true, open, audit.VerifiedNone }),
			check: func(t *testing.T, r audit.Record) {
				if r.Level != "debug" || r.Pid != 10 || r.Tid != 11 || r.Comm != "probe" || r.Syscall != "openat" ||
					r.Rule != "default" || r.Action != "allow" || r.Verified != audit.VerifiedNone || r.LatencyUs != 1.5 || r.Time.IsZero() {
					t.Errorf("header %+v", r)
				}
				a := r.Args
				if a.Path != "link" || a.Resolved != "/etc/ok" || a.Dirfd == nil || *a.Dirfd != 3 || a.Flags != "O_RDONLY" || a.Resolve != "RESOLVE_BENEATH" {
					t.Errorf("args %+v", a)
				}
			}},
		{name: "log", d: with(func(d *decision) { d.level, d.action, d.rule = zerolog.InfoLevel, policy.ActionLog, "exec" }),
			check: func(t *testing.T, r audit.Record) {
				if r.Level != "info" || r.Action != "log" || r.Rule != "exec" {
					t.Errorf("%+v", r)
				}
			}},
		{name: "deny", d: with(func(d *decision) {
			d.level, d.action, d.rule, d.errno, d.container = zerolog.WarnLevel, policy.ActionDeny, "no-secret", unix.EACCES, "c1"
		}), check: func(t *testing.T, r audit.Record) {
			if r.Level != "warn" || r.Action != "deny" || r.Errno != "EACCES" || r.Container != "c1" || r.Emulated {
				t.Errorf("%+v", r)
			}
		}},
		{name: "kill", d: with(func(d *decision) { d.level, d.action = zerolog.ErrorLevel, policy.ActionKill }),
			check: func(t *testing.T, r audit.Record) {
				if r.Level != "error" || r.Action != "kill" {
					t.Errorf("%+v", r)
				}
			}},
		{name: "refused", d: with(func(d *decision) {
			d.action, d.errno, d.reason = policy.ActionDeny, unix.EPERM, "allowed by default, refused: no binding"
		}), check: func(t *testing.T, r audit.Record) {
			if r.Reason != "allowed by default, refused: no binding" || r.Errno != "EPERM" {
				t.Errorf("%+v", r)
			}
		}},
		{name: "bad input", d: with(func(d *decision) {
			d.rule, d.errno, d.hasCall = "", unix.EFAULT, true
			d.call = callView{nPaths: 1, dirfds: [2]int{unix.AT_FDCWD, unix.AT_FDCWD}, err: unix.EFAULT}
		}), check: func(t *testing.T, r audit.Record) {
			if r.Rule != "" || r.Args.Error != "EFAULT" || r.Args.Dirfd != nil {
				t.Errorf("%+v", r)
			}
		}},
	}
}

// argumentCases are the records of each argument kind.
func argumentCases() []recordCase {
	with := recordWith
	return []recordCase{
		{name: "emulated", d: with(func(d *decision) {
			d.syscall, d.action, d.emulated, d.hasCall = "mknodat", policy.ActionEmulate, true, true
			d.call = pathCall("/dev/null2", "/dev/null2", unix.AT_FDCWD)
			d.call.pc = policy.Call{HasDev: true, Dev: policy.Dev{Kind: policy.DevChar, Major: 1, Minor: 3}}
		}), check: func(t *testing.T, r audit.Record) {
			if !r.Emulated || r.Action != "emulate" || r.Args.Dev != "c 1:3" || r.Args.Dirfd != nil {
				t.Errorf("%+v", r)
			}
		}},
		{name: "rename", d: with(func(d *decision) {
			d.syscall, d.hasCall = "renameat2", true
			d.call = callView{paths: [2]string{"a", "b"}, resolved: [2]string{"/d/a", "/e/b"}, dirfds: [2]int{4, 5}, nPaths: 2}
		}), check: func(t *testing.T, r audit.Record) {
			a := r.Args
			if a.Path != "a" || a.Path2 != "b" || a.Resolved != "/d/a" || a.Resolved2 != "/e/b" ||
				a.Dirfd == nil || *a.Dirfd != 4 || a.Dirfd2 == nil || *a.Dirfd2 != 5 {
				t.Errorf("args %+v", a)
			}
		}},
		{name: "symlink, xattr", d: with(func(d *decision) {
			d.syscall, d.hasCall = "setxattr", true
			d.call = pathCall("/f", "/f", unix.AT_FDCWD)
			d.call.target = "/t"
			d.call.pc = policy.Call{HasXattr: true, Xattr: "user.x"}
		}), check: func(t *testing.T, r audit.Record) {
			if r.Args.Target != "/t" || r.Args.Xattr != "user.x" {
				t.Errorf("args %+v", r.Args)
			}
		}},
		{name: "clone", d: with(func(d *decision) {
			d.syscall, d.hasCall = "clone3", true
			d.call = callView{flagSet: sysinfo.FlagsClone, pc: policy.Call{HasFlags: true, Flags: unix.CLONE_NEWUSER}}
		}), check: func(t *testing.T, r audit.Record) {
			if r.Args.CloneFlags != "CLONE_NEWUSER" || r.Args.Flags != "" {
				t.Errorf("args %+v", r.Args)
			}
		}},
		{name: "connect", d: with(func(d *decision) {
			d.syscall, d.hasCall = "connect", true
			d.call = callView{pc: policy.Call{HasAddr: true, Addr: policy.Sockaddr{Family: unix.AF_INET, IP: netip.MustParseAddr("127.0.0.1"), Port: 80}}}
		}), check: func(t *testing.T, r audit.Record) {
			if r.Args.Addr != "127.0.0.1:80" {
				t.Errorf("args %+v", r.Args)
			}
		}},
		{name: "unix connect", d: with(func(d *decision) {
			d.syscall, d.hasCall = "connect", true
			d.call = callView{spelledSock: "s.sock", pc: policy.Call{HasAddr: true, Addr: policy.Sockaddr{Family: unix.AF_UNIX, UnixPath: "/run/s.sock"}}}
		}), check: func(t *testing.T, r audit.Record) {
			if r.Args.Addr != "unix:s.sock" || r.Args.Resolved != "unix:/run/s.sock" {
				t.Errorf("args %+v", r.Args)
			}
		}},
	}
}

// kernelCases are the records of bound grants and what follows a call.
func kernelCases() []recordCase {
	with := recordWith
	return []recordCase{
		{name: "bound confirmation", d: with(func(d *decision) { d.verified = audit.VerifiedKernel }),
			k: &kernelView{ret: 3, dev: unix.Mkdev(254, 1), ino: 12, path: "/etc/ok", replaced: true},
			check: func(t *testing.T, r audit.Record) {
				k := r.Kernel
				if r.Verified != "kernel" || k == nil || k.Ret == nil || *k.Ret != 3 || k.Dev != "254:1" || k.Ino != 12 || k.Path != "/etc/ok" || !k.Replaced {
					t.Errorf("%+v kernel %+v", r, k)
				}
			}},
		{name: "bound connect and clone", d: with(func(d *decision) { d.verified = audit.VerifiedKernel }),
			k: &kernelView{ret: 0, peer: "127.0.0.1:80", child: 42},
			check: func(t *testing.T, r audit.Record) {
				if k := r.Kernel; k == nil || k.Peer != "127.0.0.1:80" || k.Child != 42 || k.Ret == nil || *k.Ret != 0 {
					t.Errorf("kernel %+v", k)
				}
			}},
		{name: "mismatch", d: with(func(d *decision) { d.level, d.verified = zerolog.ErrorLevel, audit.VerifiedMismatch }),
			k: &kernelView{atEnter: true, reason: "arg_changed"},
			check: func(t *testing.T, r audit.Record) {
				if k := r.Kernel; r.Verified != "mismatch" || k == nil || k.Ret != nil || k.Reason != "arg_changed" {
					t.Errorf("%+v kernel %+v", r, k)
				}
			}},
		{name: "unconfirmed", d: with(func(d *decision) { d.verified = audit.VerifiedUnconfirmed }),
			check: func(t *testing.T, r audit.Record) {
				if r.Verified != "unconfirmed" || r.Kernel != nil {
					t.Errorf("%+v", r)
				}
			}},
		{name: "withdrawn", d: with(func(d *decision) { d.withdrawn = true }),
			check: func(t *testing.T, r audit.Record) {
				if !r.Withdrawn || r.Replayed {
					t.Errorf("%+v", r)
				}
			}},
		{name: "replayed", d: with(func(d *decision) { d.replayed, d.emulated = true, true }),
			check: func(t *testing.T, r audit.Record) {
				if !r.Replayed || !r.Emulated || r.Withdrawn {
					t.Errorf("%+v", r)
				}
			}},
	}
}

// TestRecordsParseIntoRecord: every kind of record the supervisor writes
// parses into audit.Record with no field Record does not define.
func TestRecordsParseIntoRecord(t *testing.T) {
	for _, tc := range recordCases() {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := audit.NewLogger(&buf, zerolog.DebugLevel)
			// The agent adds the profile's listenerMetadata to every record.
			l = l.With().Str(audit.FieldListenerMetadata, "policy=web.yaml").Logger()
			tc.d.emit(&l, tc.k)
			r, err := audit.ParseRecord(buf.Bytes())
			if err != nil {
				t.Fatalf("%s: %v", buf.Bytes(), err)
			}
			if r.ListenerMetadata != "policy=web.yaml" {
				t.Errorf("listener_metadata %q", r.ListenerMetadata)
			}
			tc.check(t, r)
		})
	}
}
