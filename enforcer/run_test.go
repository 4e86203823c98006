package enforcer_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// fixture makes a directory with a secret and a public file and a policy
// that denies opening the secret.
type fixture struct {
	dir, secret, public string
	pol                 *policy.Policy
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	f := fixture{dir: dir, secret: filepath.Join(dir, "secret"), public: filepath.Join(dir, "public")}
	if err := os.WriteFile(f.secret, []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.public, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.pol = mustPolicy(t, fmt.Sprintf(`version: 1
rules:
  - name: no-secret
    syscalls: [open, openat, openat2, creat]
    match: { path: [%q] }
    action: deny
    errno: EACCES
`, f.secret))
	return f
}

func TestDeniedObjectIsRefusedWhateverItsSpelling(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	f := newFixture(t)
	if err := os.Symlink(f.secret, filepath.Join(f.dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(f.dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		argv []string
		want string
	}{
		{"public", []string{"-r", "open", f.public}, `ok read=hello\n`},
		{"secret", []string{"-r", "open", f.secret}, "err EACCES"},
		{"symlink to secret", []string{"-r", "open", filepath.Join(f.dir, "link")}, "err EACCES"},
		{"dotdot spelling", []string{"-r", "openat", "cwd", f.dir + "/sub/../secret"}, "err EACCES"},
		{"relative to dirfd", []string{"-r", "openat", "dir:" + f.dir, "secret"}, "err EACCES"},
		{"relative to dirfd public", []string{"-r", "openat", "dir:" + f.dir, "public"}, `ok read=hello\n`},
		{"openat2", []string{"-r", "openat2", "cwd", f.secret, "0"}, "err EACCES"},
		{"creat", []string{"creat", f.secret}, "err EACCES"},
		{"magic link via /proc/self/fd", []string{"-r", "openat", "cwd", "/proc/self/cwd/secret"}, "err EACCES"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			argv := append([]string{probe}, tc.argv...)
			r := supervise(t, f.pol, argv, withDir(f.dir))
			if got := strings.TrimSpace(r.stdout); got != tc.want {
				t.Fatalf("%v: got %q, want %q", tc.argv, got, tc.want)
			}
		})
	}
}

func TestDenialAuditRecordNamesRuleAndObject(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	f := newFixture(t)
	link := filepath.Join(f.dir, "innocent")
	if err := os.Symlink(f.secret, link); err != nil {
		t.Fatal(err)
	}
	r := supervise(t, f.pol, []string{probe, "open", link})
	recs := r.find("open", link)
	if len(recs) != 1 {
		t.Fatalf("want 1 audit record for open of %s, got %d: %v", link, len(recs), r.records)
	}
	rec := recs[0]
	if rec.Rule != "no-secret" || rec.Action != "deny" || rec.Errno != "EACCES" || rec.Emulated || rec.Comm != "probe" {
		t.Errorf("record %v, want rule no-secret, action deny, errno EACCES, not emulated, comm probe", rec)
	}
	if rec.Args.Resolved != f.secret {
		t.Errorf("args.resolved = %v, want %s", rec.Args.Resolved, f.secret)
	}
	if rec.Time.IsZero() || rec.Pid == 0 || rec.Tid == 0 || rec.LatencyUs <= 0 {
		t.Errorf("record lacks time, pid, tid or latency_us: %v", rec)
	}
	if rec.Pid != rec.Tid {
		t.Errorf("single-threaded probe: pid %v != tid %v", rec.Pid, rec.Tid)
	}
}

func TestRecordsNameTheProgramAfterAnExecVigilDoesNotTrap(t *testing.T) {
	// runc's init process opens files as runc:[2:INIT] and then execs the
	// container's program under a policy that does not trap execve; the
	// program's calls must not be recorded under the old name.
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	f := newFixture(t)
	r := supervise(t, f.pol, []string{"/bin/sh", "-c", `exec 3<"$1"; exec "$2" open "$3"`, "sh", f.public, probe, f.secret})
	before, after := r.find("openat", f.public), r.find("open", f.secret)
	if len(before) != 1 || len(after) != 1 {
		t.Fatalf("want one record of each open, got %v", r.records)
	}
	if before[0].Tid != after[0].Tid {
		t.Fatalf("the two opens came from threads %d and %d: the exec did not keep the thread", before[0].Tid, after[0].Tid)
	}
	if before[0].Comm != "sh" || after[0].Comm != "probe" {
		t.Errorf("comm before the exec %q, after %q; want sh and probe", before[0].Comm, after[0].Comm)
	}
}

// TestRecordsNameAThreadByItsNewName: a thread that names itself
// (PR_SET_NAME: pthread_setname_np, Python's and Go's thread names) is
// recorded under its new name from its next call on, not for up to a second
// under the old one (task_rename moves the comm epoch).
func TestRecordsNameAThreadByItsNewName(t *testing.T) {
	testenv.RequirePrivileged(t)
	f := newFixture(t)
	const prog = `import ctypes, sys
libc = ctypes.CDLL(None)
open(sys.argv[1]).close()
libc.prctl(15, b"renamed", 0, 0, 0)
try:
    open(sys.argv[2]).close()
except OSError:
    pass
`
	r := supervise(t, f.pol, []string{"/usr/bin/python3", "-c", prog, f.public, f.secret})
	before, after := r.find("openat", f.public), r.find("openat", f.secret)
	if len(before) != 1 || len(after) != 1 {
		t.Fatalf("want one record of each open, got %v", r.records)
	}
	if before[0].Comm != "python3" || after[0].Comm != "renamed" {
		t.Errorf("comm before the rename %q, after %q; want python3 and renamed", before[0].Comm, after[0].Comm)
	}
}

// TestRecordsKeepNamesThatAreNotUTF8: a file name, and a thread's name, is
// any bytes; records write one that is not UTF-8 escaped and say so, so that
// "\xff" and "\xfe" (both U+FFFD before) read back as the names used.
func TestRecordsKeepNamesThatAreNotUTF8(t *testing.T) {
	testenv.RequirePrivileged(t)
	dir := t.TempDir()
	pol := mustPolicy(t, `version: 1
rules:
  - name: not-here
    syscalls: [rename, openat]
    match: { path: ["/nonexistent/**"] }
    action: deny
`)
	const prog = `import ctypes, os, sys
ctypes.CDLL(None).prctl(15, b"n\xff", 0, 0, 0)
os.chdir(sys.argv[1])
open(b"\xff", "w").close()
os.rename(b"\xff", b"\xfe")
`
	r := supervise(t, pol, []string{"/usr/bin/python3", "-c", prog, dir})
	var found bool
	for _, rec := range r.records {
		if rec.Syscall != "rename" {
			continue
		}
		found = true
		if comm, err := audit.Unescape(rec.Comm); !rec.CommEscaped || err != nil || comm != "n\xff" {
			t.Errorf("comm %q (escaped %v) reads back as %q, %v", rec.Comm, rec.CommEscaped, comm, err)
		}
		a := rec.Args
		if !slices.Contains(a.Escaped, audit.ArgPath) || !slices.Contains(a.Escaped, audit.ArgPath2) ||
			!slices.Contains(a.Escaped, audit.ArgResolved) || !slices.Contains(a.Escaped, audit.ArgResolved2) {
			t.Fatalf("rename record does not list its escaped names: %+v", a)
		}
		from, err1 := audit.Unescape(a.Path)
		to, err2 := audit.Unescape(a.Path2)
		res, err3 := audit.Unescape(a.Resolved2)
		if err1 != nil || err2 != nil || err3 != nil || from != "\xff" || to != "\xfe" || res != dir+"/\xfe" {
			t.Errorf("rename record names %q -> %q (%q): %v %v %v", from, to, res, err1, err2, err3)
		}
	}
	if !found {
		t.Fatalf("no rename record: %v", r.records)
	}
	if _, err := os.Stat(filepath.Join(dir, "\xfe")); err != nil {
		t.Errorf("the rename did not happen: %v", err)
	}
}

func TestAllowedPointerDecisionIsBoundAndConfirmed(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	f := newFixture(t)
	r := supervise(t, f.pol, []string{probe, "open", f.public})
	recs := r.find("open", f.public)
	if len(recs) != 1 {
		t.Fatalf("want 1 record, got %v", r.records)
	}
	rec := recs[0]
	if rec.Action != "allow" || rec.Verified != audit.VerifiedKernel || rec.Rule != "default" {
		t.Fatalf("allowed open record: %v", rec)
	}
	k := rec.Kernel
	var st syscall.Stat_t
	if err := syscall.Stat(f.public, &st); err != nil {
		t.Fatal(err)
	}
	if k == nil || k.Path != f.public || k.Ino != st.Ino {
		t.Fatalf("record's kernel view %+v, want path %s ino %d", k, f.public, st.Ino)
	}

	r = supervise(t, f.pol, []string{probe, "open", f.public}, naive())
	recs = r.find("open", f.public)
	if len(recs) != 1 || recs[0].Verified != audit.VerifiedNone || recs[0].Kernel != nil {
		t.Fatalf("naive mode: want verified none without a kernel view, got %v", recs)
	}
}

// TestForksStayUntrappedUnderANamespaceRule: under a policy whose clone rules
// test flags alone (deny CLONE_NEWUSER) and allow the rest, the filter sends
// clone(2) to vigil only when its flags register carries a tested bit: a
// fork runs natively (no notification, no record, no exposure to a signal
// arriving before vigil receives it), and the namespace clone is still
// denied. Real software: python's os.fork and a raw clone(2).
func TestForksStayUntrappedUnderANamespaceRule(t *testing.T) {
	testenv.RequirePrivileged(t)
	pol := mustPolicy(t, `version: 1
rules:
  - name: no-userns
    syscalls: [clone, clone3]
    match: { flags: { any: [CLONE_NEWUSER] } }
    action: deny
`)
	const prog = `import ctypes, os
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    print("fork", os.waitpid(pid, 0)[1] >> 8)
libc = ctypes.CDLL(None, use_errno=True)
r = libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0)  # clone(CLONE_NEWUSER|SIGCHLD)
if r == 0:
    os._exit(0)
print("newuser", r, ctypes.get_errno())
`
	r := supervise(t, pol, []string{"/usr/bin/python3", "-c", prog})
	if want := "fork 3\nfork 3\nfork 3\nnewuser -1 1\n"; r.stdout != want {
		t.Errorf("output %q, want %q", r.stdout, want)
	}
	var clones []string
	for _, rec := range r.records {
		if rec.Syscall == "clone" {
			clones = append(clones, rec.Rule+" "+rec.Action)
		}
	}
	if len(clones) != 1 || clones[0] != "no-userns deny" {
		t.Errorf("clone records %v, want only the denied namespace clone", clones)
	}
}

func TestClone3FlagsPolicyIsEnforced(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	pol := mustPolicy(t, `version: 1
rules:
  - name: no-userns
    syscalls: [clone3, clone]
    match: { flags: { any: [CLONE_NEWUSER] } }
    action: deny
`)
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"clone3", "CLONE_NEWUSER"}, "err EPERM"},
		{[]string{"clone3", "0"}, "ok"},
		{[]string{"clone3", "CLONE_NEWUSER|CLONE_NEWNS"}, "err EPERM"},
		{[]string{"clone", "CLONE_NEWUSER"}, "err EPERM"},
		{[]string{"clone", "0"}, "ok"},
	} {
		r := supervise(t, pol, append([]string{probe}, tc.argv...))
		if got := firstWord2(r.stdout); got != tc.want {
			t.Errorf("probe %v: got %q, want %q", tc.argv, r.stdout, tc.want)
		}
	}
}

func TestOpenat2ResolveFlagsPolicyIsEnforced(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	pol := mustPolicy(t, `version: 1
rules:
  - name: confined-only
    syscalls: [openat2]
    match: { resolve: { none: [RESOLVE_BENEATH, RESOLVE_IN_ROOT] } }
    action: deny
    errno: EACCES
`)
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"openat2", "dir:/etc", "hostname", "0"}, "err EACCES"},
		{[]string{"openat2", "dir:/etc", "hostname", "RESOLVE_BENEATH"}, "ok"},
		{[]string{"openat2", "dir:/etc", "hostname", "RESOLVE_IN_ROOT|RESOLVE_NO_SYMLINKS"}, "ok"},
		{[]string{"openat2", "dir:/etc", "hostname", "RESOLVE_NO_SYMLINKS"}, "err EACCES"},
	} {
		r := supervise(t, pol, append([]string{probe}, tc.argv...))
		if got := strings.TrimSpace(r.stdout); got != tc.want {
			t.Errorf("probe %v: got %q, want %q", tc.argv, got, tc.want)
		}
	}
}

// firstWord2 returns the first two words of the first line ("err EPERM") or
// "ok".
func firstWord2(s string) string {
	f := strings.Fields(lines(s)[0])
	if len(f) == 0 {
		return ""
	}
	if f[0] == "ok" || len(f) < 2 {
		return f[0]
	}
	return f[0] + " " + f[1]
}

func withDir(dir string) runOpt {
	return func(c *enforcer.RunConfig) { c.Dir = dir }
}

func TestBadPointerArgumentsGetTheKernelsErrno(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	// Content-dependent rules on every syscall the probe can break, so each
	// bad argument is read and vetted by vigil rather than passed through.
	pol := mustPolicy(t, `version: 1
rules:
  - syscalls: [open, openat, openat2, creat, unlink, mkdir, execve, mknod, setxattr]
    match: { path: ["/nonexistent-vigil-protected/**"] }
    action: deny
  - syscalls: [connect]
    match: { addr: ["192.0.2.0/24"] }
    action: deny
  - syscalls: [clone3]
    match: { flags: { any: [CLONE_NEWUSER] } }
    action: deny
`)
	type tc struct{ kind, sc string }
	var cases []tc
	for _, k := range []string{"null", "unmapped", "cross", "long", "exactmax", "empty"} {
		for _, sc := range []string{"open", "openat", "openat2", "creat", "unlink", "mkdir", "execve", "mknod", "setxattr"} {
			cases = append(cases, tc{k, sc})
		}
	}
	for _, k := range []string{"howsmall", "howbig", "hownull", "howtail"} {
		cases = append(cases, tc{k, "openat2"})
	}
	cases = append(cases, tc{"cloneargsnull", "clone3"}, tc{"cloneargssmall", "clone3"})
	for _, k := range []string{"addrnull", "addrshort", "addrlong"} {
		cases = append(cases, tc{k, "connect"})
	}
	dir := t.TempDir()
	for _, c := range cases {
		argv := []string{probe, "badptr", c.kind, c.sc}
		want, _ := bareIn(t, dir, argv...)
		r := supervise(t, pol, argv, withDir(dir))
		if strings.TrimSpace(r.stdout) != strings.TrimSpace(want) {
			t.Errorf("badptr %s %s: supervised %q, unsupervised %q", c.kind, c.sc, strings.TrimSpace(r.stdout), strings.TrimSpace(want))
		}
	}
}

func TestDirfdErrorsMatchTheKernel(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	f := newFixture(t)
	for _, argv := range [][]string{
		{"openat", "file:" + f.public, "x"},
		{"openat", "closed", "x"},
		{"openat", "bad", "x"},
		{"openat", "dir:" + f.dir, "missing"},
		{"openat", "dir:" + f.dir, "missing/deeper"},
		{"openat", "dir:" + f.dir, "public/x"},
		{"openat", "file:" + f.public, "/etc/hostname"},
		{"openat2", "closed", "x", "0"},
		{"open", f.dir + "/public/"},
		{"open", f.dir + "/new", "O_CREAT|O_DIRECTORY"},
		{"mkdir", f.dir + "/public"},
		{"unlink", f.dir + "/missing"},
	} {
		full := append([]string{probe}, argv...)
		want, _ := bare(t, full...)
		r := supervise(t, f.pol, full)
		if strings.TrimSpace(r.stdout) != strings.TrimSpace(want) {
			t.Errorf("%v: supervised %q, unsupervised %q", argv, r.stdout, want)
		}
	}
}

func bareIn(t *testing.T, dir string, argv ...string) (string, int) {
	t.Helper()
	old, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(old)
	return bare(t, argv...)
}

func TestConcurrentThreadsGetCorrectDecisions(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	f := newFixture(t)
	const threads, iters = 32, 2000
	r := supervise(t, f.pol, []string{probe, "threads", fmt.Sprint(threads), fmt.Sprint(iters), f.secret})
	if got, want := strings.TrimSpace(r.stdout), fmt.Sprintf("ok 0 err %d EACCES", threads*iters); got != want {
		t.Fatalf("secret: got %q, want %q", got, want)
	}
	r = supervise(t, f.pol, []string{probe, "threads", fmt.Sprint(threads), fmt.Sprint(iters), f.public})
	if got, want := strings.TrimSpace(r.stdout), fmt.Sprintf("ok %d err 0 -", threads*iters); got != want {
		t.Fatalf("public: got %q, want %q", got, want)
	}
	if r.stats.Notifications < threads*iters {
		t.Fatalf("only %d notifications for %d opens", r.stats.Notifications, threads*iters)
	}
}

func TestWatcheeExitsWithPendingNotification(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	f := newFixture(t)
	slow := withBeforeAnswer(func(n *notify.Notif, path string) {
		if isOpen(n) && path == f.public {
			time.Sleep(300 * time.Millisecond)
		}
	})
	r := supervise(t, f.pol, []string{probe, "pending-exit", f.public}, slow)
	if r.code != 0 {
		t.Fatalf("pending-exit exited %d, stdout %q", r.code, r.stdout)
	}
	if r.stats.Gone == 0 {
		t.Fatalf("the pending open should have been withdrawn: stats %+v", r.stats)
	}
}

func TestWatcheeKilledWhilePending(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	f := newFixture(t)
	kill := withBeforeAnswer(func(n *notify.Notif, path string) {
		if isOpen(n) && path == f.public {
			_ = syscall.Kill(int(n.Pid), syscall.SIGKILL)
			time.Sleep(50 * time.Millisecond)
		}
	})
	r := supervise(t, f.pol, []string{probe, "open", f.public}, kill)
	if r.code != 128+int(syscall.SIGKILL) {
		t.Fatalf("exit code %d, want %d", r.code, 128+int(syscall.SIGKILL))
	}
	if r.stats.Gone == 0 {
		t.Fatalf("answer to a killed thread should be withdrawn: %+v", r.stats)
	}
}

// TestSignalWhilePendingDecidesTheCallOnce signals a watchee (SA_RESTART
// handler) while vigil holds its open. With SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
// the kernel lets only fatal signals interrupt a notification vigil has
// received, so the open is decided exactly once and the handler runs after
// it: an emulated call can never be applied twice by a restart.
func TestSignalWhilePendingDecidesTheCallOnce(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	f := newFixture(t)
	var signalled atomic.Bool
	sig := withBeforeAnswer(func(n *notify.Notif, path string) {
		if isOpen(n) && path == f.secret && signalled.CompareAndSwap(false, true) {
			_ = syscall.Tgkill(int(n.Pid), int(n.Pid), syscall.SIGUSR1)
			time.Sleep(100 * time.Millisecond)
		}
	})
	r := supervise(t, f.pol, []string{probe, "restart", f.secret}, sig)
	if got := strings.TrimSpace(r.stdout); got != "err EACCES signals=1" {
		t.Fatalf("restart: got %q, want the open denied and the handler run once", got)
	}
	recs := r.find("openat", f.secret)
	if len(recs) != 1 || recs[0].Withdrawn {
		t.Fatalf("want the open decided exactly once, got %d records: %v", len(recs), recs)
	}
}

// TestNonNativeSyscallABIsNeverGetThrough compares each non-native syscall
// ABI with an unsupervised run on the same machine, because the platform
// decides first: a kernel built or booted without IA-32 emulation
// (CONFIG_IA32_EMULATION=n, ia32_emulation=0) makes `int $0x80` a general
// protection fault (SIGSEGV) before seccomp runs, and a kernel without
// CONFIG_X86_X32_ABI answers x32 calls ENOSYS. What the platform lets
// through, vigil must kill (its filter has no decoder for these ABIs, so it
// kills rather than guess); what the platform refuses stays refused — the
// same outcome as bare, or vigil's SIGSYS, which is also a refusal and never
// runs the call.
func TestNonNativeSyscallABIsNeverGetThrough(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	f := newFixture(t)
	sigsys := 128 + int(syscall.SIGSYS)
	for _, abi := range []string{"i386", "x32"} {
		t.Run(abi, func(t *testing.T) {
			out, code := bare(t, probe, abi)
			r := supervise(t, f.pol, []string{probe, abi})
			bareGot := code == 0 && strings.HasPrefix(out, "ok")
			switch {
			case bareGot && r.code != sigsys:
				t.Fatalf("%s call: bare exit 0 %q (the platform runs it); under vigil exit %d stdout %q, want killed by SIGSYS",
					abi, out, r.code, r.stdout)
			case !bareGot && r.code != sigsys && (r.code != code || r.stdout != out):
				t.Fatalf("%s call: bare exit %d stdout %q (the platform refuses it); under vigil exit %d stdout %q, want the same refusal or SIGSYS",
					abi, code, out, r.code, r.stdout)
			}
			t.Logf("%s: bare exit %d %q, under vigil exit %d %q", abi, code, strings.TrimSpace(out), r.code, strings.TrimSpace(r.stdout))
		})
	}
}

// TestPathsResolveInTheWatcheesRootAfterChroot checks that a watchee that
// leaves vigil's root is resolved in its new root — "/secret" inside the
// chroot is the fixture's secret, and "/etc/hostname" does not exist there —
// while policy paths keep naming objects as the reference view (vigil's) had
// them: the rule names the secret by its path outside the chroot, which is
// what it denies under any spelling the chroot allows (issue 9, bypass 1).
func TestPathsResolveInTheWatcheesRootAfterChroot(t *testing.T) {
	testenv.RequirePrivileged(t)
	f := newFixture(t)
	pol := mustPolicy(t, fmt.Sprintf(`version: 1
rules:
  - syscalls: [open, openat]
    match: { path: [%q] }
    action: deny
    errno: EACCES
`, f.secret))
	self, _ := os.Executable()
	t.Setenv("VIGIL_TEST_HELPER", "chroot-open")
	r := supervise(t, pol, []string{self, f.dir, "/secret", "/public", "/etc/hostname", "/../../secret"})
	want := "err EACCES\nok\nerr ENOENT\nerr EACCES"
	if got := strings.TrimSpace(r.stdout); got != want {
		t.Fatalf("after chroot(%s): got %q, want %q", f.dir, got, want)
	}
	for _, rec := range r.find("openat", "/secret") {
		if rec.Args.Resolved != f.secret {
			t.Fatalf("record names %v, want the reference name %s", rec.Args.Resolved, f.secret)
		}
	}
}

func TestHardeningRulesRefuseEscapes(t *testing.T) {
	testenv.RequirePrivileged(t)
	f := newFixture(t)
	self, _ := os.Executable()
	for _, h := range []string{"seccomp-listener", "io_uring", "ptrace"} {
		t.Setenv("VIGIL_TEST_HELPER", h)
		r := supervise(t, f.pol, []string{self})
		if got := strings.TrimSpace(r.stdout); got != "err EPERM" {
			t.Errorf("%s under vigil: got %q, want err EPERM", h, got)
		}
	}
}

func TestDefaultPolicyProtectsCredentialsAndBinaries(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	pol := policy.Default()
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"open", "/etc/shadow"}, "err EACCES"},
		{[]string{"open", "/etc/hostname"}, "ok"},
		{[]string{"open", "/usr/bin/true", "O_WRONLY"}, "err EACCES"},
		{[]string{"open", "/bin/true", "O_RDWR"}, "err EACCES"},
		{[]string{"open", "/usr/bin/true"}, "ok"},
	} {
		r := supervise(t, pol, append([]string{probe}, tc.argv...))
		if got := strings.TrimSpace(r.stdout); got != tc.want {
			t.Errorf("%v: got %q want %q", tc.argv, got, tc.want)
		}
	}
	r := supervise(t, pol, []string{probe, "exec", "/bin/true"})
	if recs := r.find("execve", "/bin/true"); len(recs) != 1 || recs[0].Rule != "exec" || recs[0].Action != "log" {
		t.Fatalf("exec of /bin/true should be logged by rule exec: %v", r.records)
	}
}

// isOpen reports whether n is an open or openat notification.
func isOpen(n *notify.Notif) bool {
	name := sysinfo.Name(int(n.Data.Nr))
	return name == "open" || name == "openat"
}
