package enforcer_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// userNSDir makes a directory the user-namespace root (host uid 100000) can
// create nodes in, reachable through world-traversable parents.
func userNSDir(t *testing.T) string {
	t.Helper()
	parent, err := os.MkdirTemp("", "vigil-userns-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "x")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 100000, 100000); err != nil {
		t.Fatal(err)
	}
	return dir
}

const lendPolicy = `version: 1
rules:
  - name: devices
    syscalls: [mknod, mknodat]
    match: { dev: ["c 1:3", "c 1:5", "c 1:8", "c 1:9"] }
    action: emulate
  - name: overlay-xattrs
    syscalls: [setxattr, lsetxattr]
    match: { xattr: ["trusted.overlay.opaque", "trusted.overlay.redirect"] }
    action: emulate
`

// TestUserNSMknodIsLentForWhitelistedDevices is the seed's use case: root in
// a user namespace may not mknod, vigil does it for whitelisted devices.
func TestUserNSMknodIsLentForWhitelistedDevices(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	dir := userNSDir(t)
	pol := mustPolicy(t, lendPolicy)
	null := filepath.Join(dir, "null")

	// Without vigil the namespace's root gets EPERM.
	r := supervise(t, mustPolicy(t, "version: 1\nrules:\n  - syscalls: [getppid]\n    action: allow\n"),
		[]string{probe, "mknod", null, "c", "1", "3"}, inUserNS())
	if got := strings.TrimSpace(r.stdout); got != "err EPERM" {
		t.Fatalf("unsupervised mknod in a user namespace: %q, want err EPERM", got)
	}

	r = supervise(t, pol, []string{probe, "mknod", null, "c", "1", "3"}, inUserNS())
	if got := strings.TrimSpace(r.stdout); got != "ok" {
		t.Fatalf("mknod c 1 3 under vigil: %q", got)
	}
	var st unix.Stat_t
	if err := unix.Stat(null, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 || st.Uid != 100000 {
		t.Fatalf("node: mode %o rdev %d:%d uid %d", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev), st.Uid)
	}
	recs := r.find("mknod", null)
	if len(recs) != 1 || !recs[0].Emulated || recs[0].Rule != "devices" {
		t.Fatalf("mknod record: %v", recs)
	}
	// The node works: the namespace's root writes to it.
	r = supervise(t, pol, []string{"sh", "-c", fmt.Sprintf("echo hi > %s && echo wrote", null)}, inUserNS())
	if strings.TrimSpace(r.stdout) != "wrote" {
		t.Fatalf("writing to the emulated node: %q", r.stdout)
	}

	// /dev/mem is not whitelisted: the watchee gets what it would get alone.
	r = supervise(t, pol, []string{probe, "mknod", filepath.Join(dir, "mem"), "c", "1", "1"}, inUserNS())
	if got := strings.TrimSpace(r.stdout); got != "err EPERM" {
		t.Fatalf("mknod c 1 1: %q, want err EPERM", got)
	}

	// FIFOs need no privilege and are never trapped.
	fifo := filepath.Join(dir, "fifo")
	r = supervise(t, pol, []string{probe, "mknod", fifo, "p"}, inUserNS())
	if got := strings.TrimSpace(r.stdout); got != "ok" {
		t.Fatalf("mkfifo: %q", got)
	}
	if recs := r.find("mknod", fifo); len(recs) != 0 {
		t.Fatalf("mkfifo was trapped: %v", recs)
	}
}

func TestUserNSSetxattrIsLentForWhitelistedNames(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	dir := userNSDir(t)
	pol := mustPolicy(t, lendPolicy)
	r := supervise(t, pol, []string{probe, "setxattr", dir, "trusted.overlay.opaque", "y"}, inUserNS())
	if got := strings.TrimSpace(r.stdout); got != "ok" {
		t.Fatalf("setxattr trusted.overlay.opaque: %q", got)
	}
	buf := make([]byte, 16)
	n, err := unix.Getxattr(dir, "trusted.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Fatalf("xattr on the host: %q, %v", buf[:n], err)
	}
	// A trusted name that is not whitelisted fails as it would alone.
	alone := supervise(t, mustPolicy(t, "version: 1\nrules:\n  - syscalls: [getppid]\n    action: allow\n"),
		[]string{probe, "setxattr", dir, "trusted.other", "y"}, inUserNS())
	r = supervise(t, pol, []string{probe, "setxattr", dir, "trusted.other", "y"}, inUserNS())
	if strings.TrimSpace(r.stdout) != strings.TrimSpace(alone.stdout) || !strings.HasPrefix(r.stdout, "err") {
		t.Fatalf("trusted.other: under vigil %q, alone %q", r.stdout, alone.stdout)
	}
}

// TestEmulatedPathCallsMatchTheKernel runs side-effecting path calls that
// the default policy allows depending on their path (so vigil performs them)
// and compares every result with an unsupervised run.
func TestEmulatedPathCallsMatchTheKernel(t *testing.T) {
	testenv.RequirePrivileged(t)
	script := `d=$1; set +e
mkdir $d/a; echo mkdir=$?
mkdir $d/a; echo mkdir-again=$?
touch $d/a/f; ln $d/a/f $d/a/hard; echo link=$?
ln -s f $d/a/soft; echo symlink=$?
mv $d/a/f $d/a/g; echo rename=$?
chmod 640 $d/a/g; echo chmod=$?
truncate -s 3 $d/a/g; echo truncate=$?
rm $d/a/missing; echo rm-missing=$?
rmdir $d/a; echo rmdir-nonempty=$?
rm -r $d/a; echo rm=$?
mkdir -m 700 $d/b; stat -c '%a %s' $d/b
umask 077; mkdir $d/c; stat -c '%a' $d/c
`
	run := func(supervised bool) string {
		dir := t.TempDir()
		argv := []string{"sh", "-c", script, "sh", dir}
		if !supervised {
			out, _ := bare(t, argv...)
			return strings.ReplaceAll(out, dir, "D")
		}
		r := supervise(t, policyDefault(t), argv)
		if n := countEmulated(r); n < 5 {
			t.Errorf("only %d calls were emulated", n)
		}
		return strings.ReplaceAll(r.stdout, dir, "D")
	}
	want, got := run(false), run(true)
	if got != want {
		t.Fatalf("emulated path calls differ from the kernel's:\nunder vigil:\n%s\nalone:\n%s", got, want)
	}
}

func countEmulated(r result) int {
	n := 0
	for _, rec := range r.records {
		if rec.Emulated {
			n++
		}
	}
	return n
}

func policyDefault(t *testing.T) *policy.Policy {
	t.Helper()
	return policy.Default()
}

// TestEmulatedOpensMatchTheKernel: opens for writing that a path rule could
// have refused are performed by vigil and installed with ADDFD; what the
// watchee sees (results, errors, modes under its umask, O_EXCL, O_APPEND,
// relative paths, O_CLOEXEC) must equal an unsupervised run.
func TestEmulatedOpensMatchTheKernel(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	script := `d=$1; p=$2; set +e; cd $d
echo one > f; echo create=$?
echo two >> f; echo append=$?; cat f
umask 027; echo x > g; stat -c '%a %s' g
set -C; echo y > g; echo noclobber=$?; set +C
mkdir sub; echo z > sub/../h; stat -c '%a' h
$p openat dir:$d/sub new O_WRONLY O_CREAT O_EXCL
$p openat dir:$d/sub new O_WRONLY O_CREAT O_EXCL
$p openat cwd missing/x O_WRONLY O_CREAT
$p openat file:$d/f x O_WRONLY O_CREAT
$p -r openat cwd f O_RDWR O_CLOEXEC
$p open $d/f O_WRONLY O_TRUNC
stat -c '%s' f
$p open $d/f O_WRONLY O_APPEND
$p open $d/f O_RDWR O_CLOEXEC
$p open $d/sub O_WRONLY
$p open $d/f O_WRONLY O_DIRECTORY
$p open $d/sub/../f O_RDWR
`
	run := func(supervised bool) string {
		dir := t.TempDir()
		argv := []string{"sh", "-c", script, "sh", dir, probe}
		if !supervised {
			out, _ := bare(t, argv...)
			return strings.ReplaceAll(out, dir, "D")
		}
		r := supervise(t, policyDefault(t), argv)
		if n := countEmulated(r); n < 6 {
			t.Errorf("only %d calls were emulated", n)
		}
		return strings.ReplaceAll(r.stdout, dir, "D")
	}
	want, got := run(false), run(true)
	if got != want {
		t.Fatalf("emulated opens differ from the kernel's:\nunder vigil:\n%s\nalone:\n%s", got, want)
	}
}

// pathSwapRun performs op on n names through a path component that a
// thread keeps swapping with a symlink into a protected directory, and
// returns how many of the protected directory's entries were touched
// (deleted, renamed, written to, or created).
func pathSwapRun(t *testing.T, op string, n int, opts ...runOpt) int {
	t.Helper()
	probe := testenv.Bin(t, "probe")
	dir := t.TempDir()
	protected := filepath.Join(dir, "protected")
	work := filepath.Join(dir, "work")
	for _, d := range []string{protected, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("v%d", i)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Symlink(protected, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	pol := mustPolicy(t, fmt.Sprintf(`version: 1
rules:
  - syscalls: [unlink, unlinkat, mkdir, mkdirat, rename, renameat, renameat2, open, openat]
    match: { path: [%q] }
    action: deny
`, protected+"/**"))
	supervise(t, pol, []string{probe, "pathswap", op, dir, fmt.Sprint(n)}, opts...)
	touched := 0
	entries, err := os.ReadDir(protected)
	if err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	for _, e := range entries {
		present[e.Name()] = true
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.Size() != 0 {
			touched++ // written to
		}
		if !strings.HasPrefix(e.Name(), "v") {
			touched++ // created or renamed into it
		}
	}
	for i := 0; i < n; i++ {
		if !present[fmt.Sprintf("v%d", i)] {
			touched++ // deleted or renamed away
		}
	}
	return touched
}

// TestEmulatedPathCallsNeverTouchTheProtectedDirectory: with an unverified
// CONTINUE the kernel re-resolves the path after vigil vetted it and acts in
// the protected directory; emulated, the call acts on the directory vigil
// vetted, held open, and never does.
func TestEmulatedPathCallsNeverTouchTheProtectedDirectory(t *testing.T) {
	testenv.RequirePrivileged(t)
	for _, op := range []string{"unlink", "mkdir", "rename", "write"} {
		t.Run(op, func(t *testing.T) {
			naiveTouched := 0
			for i := 0; i < 5 && naiveTouched == 0; i++ {
				naiveTouched += pathSwapRun(t, op, 300, naive(), func(c *enforcer.RunConfig) { c.Emulator = nil })
			}
			if naiveTouched == 0 {
				t.Fatalf("%s: the swap race never reached the protected directory through a naive supervisor; no teeth", op)
			}
			for i := 0; i < 3; i++ {
				if n := pathSwapRun(t, op, 300); n != 0 {
					t.Fatalf("%s run %d: %d protected entries touched despite emulation", op, i, n)
				}
			}
		})
	}
}

// TestEmulatedOpenSemantics compares what a watchee sees from emulated
// opens with an unsupervised run: exactly one of two threads racing
// O_CREAT|O_EXCL wins, EMFILE arrives at the same count under a low
// RLIMIT_NOFILE (before anything is created), and O_CLOEXEC is visible.
func TestEmulatedOpenSemantics(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	for _, tc := range []struct {
		name string
		argv func(dir string) []string
	}{
		{"excl race", func(d string) []string { return []string{probe, "excl", filepath.Join(d, "x"), "100"} }},
		{"emfile", func(d string) []string {
			_ = os.WriteFile(filepath.Join(d, "f"), nil, 0o644)
			return []string{probe, "emfile", filepath.Join(d, "f"), "12"}
		}},
		{"cloexec", func(d string) []string {
			_ = os.WriteFile(filepath.Join(d, "f"), nil, 0o644)
			return []string{probe, "cloexec", filepath.Join(d, "f")}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, _ := bare(t, tc.argv(t.TempDir())...)
			r := supervise(t, policyDefault(t), tc.argv(t.TempDir()))
			if countEmulated(r) == 0 {
				t.Fatalf("no open was emulated: %v", r.records)
			}
			if r.stdout != want {
				t.Fatalf("under vigil %q, alone %q", r.stdout, want)
			}
		})
	}
}

// TestEmulatedConnectMatchesTheKernel connects the watchee's own socket from
// vigil with the address vigil vetted; the watchee sees what it would see
// alone (success, ECONNREFUSED, an IPv6 peer) and the record says emulated.
func TestEmulatedConnectMatchesTheKernel(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	l := listen(t)
	pol := mustPolicy(t, "version: 1\nrules:\n  - syscalls: [connect]\n    match: { addr: [\"192.0.2.0/24\"] }\n    action: deny\n")
	for _, argv := range [][]string{
		{probe, "connect", "127.0.0.1", fmt.Sprint(l.port)},
		{probe, "connect", "127.0.0.1", "9"},
		{probe, "connect", "::1", "9"},
		// Non-blocking sockets are connected on the receiver itself.
		{probe, "connect", "-n", "127.0.0.1", fmt.Sprint(l.port)},
		{probe, "connect", "-n", "127.0.0.1", "9"},
		{probe, "connect", "-n", "::1", "9"},
	} {
		connectMatchesBare(t, pol, argv)
	}
}

// connectMatchesBare runs argv bare and under pol, and wants the same output
// and its last connect emulated.
func connectMatchesBare(t *testing.T, pol *policy.Policy, argv []string) {
	t.Helper()
	want, _ := bare(t, argv...)
	r := supervise(t, pol, argv)
	if r.stdout != want {
		t.Errorf("%v: under vigil %q, alone %q", argv[1:], r.stdout, want)
	}
	if recs := r.find("connect", ""); len(recs) == 0 || !recs[len(recs)-1].Emulated {
		t.Errorf("%v: connect not emulated: %v", argv[1:], recs)
	}
}

// TestEmulatedConnectToAnotherHostWaitsOffTheReceiver: a blocking connect
// to an address that is not loopback may wait for a remote handshake, so
// vigil connects it off the receiving thread; what the watchee sees is still
// what it sees alone. One of this machine's own non-loopback addresses
// stands for the other host (its handshake is local, but the address says
// nothing of that).
func TestEmulatedConnectToAnotherHostWaitsOffTheReceiver(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	ip := nonLoopbackAddr(t)
	l := listenOn(t, ip.String())
	pol := mustPolicy(t, fmt.Sprintf("version: 1\nrules:\n  - syscalls: [connect]\n    match: { addr: [%q] }\n    action: allow\n", ip.String()))
	connectMatchesBare(t, pol, []string{probe, "connect", ip.String(), fmt.Sprint(l.port)})
	connectMatchesBare(t, pol, []string{probe, "connect", ip.String(), "9"})
}

// TestSignalsInterruptABlockingConnectAsAlone: a blocking connect vigil
// performs off the receiver (a peer that is not loopback) waits for the
// handshake while the watchee's wait no longer wakes for signals; python's
// alarm handler still raises out of connect after a second, as alone. The
// peer's accept queue is full, so the handshake would take the kernel's SYN
// retries (minutes) to fail; the watchee hung that long before vigil answered
// ERESTARTSYS. The interrupted connect goes on in the background, as the
// kernel's does: once the queue is drained the socket connects. That holds
// too without WAIT_KILLABLE_RECV (runc), where the signal withdraws the call
// from vigil and vigil shut the socket down, taking it for the watchee's
// death.
func TestSignalsInterruptABlockingConnectAsAlone(t *testing.T) {
	testenv.RequirePrivileged(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatalf("python3: %v", err)
	}
	ip := nonLoopbackAddr(t)
	for _, tc := range []struct {
		name, addr string
		opts       []runOpt
		errno      string // of the interrupted connect's record, "A|B" for either; "-" for any
	}{
		{"WAIT_KILLABLE_RECV", ip.String(), nil, "ERESTARTSYS"},
		// Withdrawn by the kernel (ESRCH), or, when vigil's poll saw the
		// pending signal before the watchee woke to withdraw the call, answered
		// ERESTARTSYS, which the watchee gets all the same (a busy machine
		// decides which comes first).
		{"interruptible", ip.String(), []runOpt{interruptible}, "ESRCH|ERESTARTSYS"},
		// Loopback connects are made on the receiver; the kernel's
		// withdrawal must not shut the socket down either.
		{"interruptible, loopback", "127.0.0.1", []runOpt{interruptible}, "-"},
	} {
		t.Run(tc.name, func(t *testing.T) { interruptedConnectAsAlone(t, tc.addr, tc.errno, tc.opts...) })
	}
}

// interruptedConnectAsAlone runs the interrupted connect to addr bare and
// under vigil.
func interruptedConnectAsAlone(t *testing.T, addr, errno string, opts ...runOpt) {
	t.Helper()
	pol := mustPolicy(t, fmt.Sprintf("version: 1\nrules:\n  - syscalls: [connect]\n    match: { addr: [%q] }\n    action: allow\n", addr))
	py := fmt.Sprintf(`
import select, signal, socket, time
srv = socket.socket(); srv.bind((%[1]q, 0)); srv.listen(0); peer = (%[1]q, srv.getsockname()[1])
queued = []
for _ in range(3):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(peer)
    except BlockingIOError: pass
    queued.append(c)
time.sleep(0.3)
def h(*a): raise TimeoutError
signal.signal(signal.SIGALRM, h)
signal.alarm(1)
s = socket.socket()
try: s.connect(peer); print("connected")
except TimeoutError: print("interrupted")
srv.setblocking(False)
deadline = time.time() + 30
while time.time() < deadline and not select.select([], [s], [], 0.2)[1]:
    try: queued.append(srv.accept()[0])
    except BlockingIOError: pass
try: print("later connected to the peer:", s.getpeername() == peer)
except OSError as e: print("later:", e.strerror)
`, addr)
	argv := []string{"timeout", "-s", "KILL", "60", "python3", "-c", py}
	want, wantCode := bare(t, argv...)
	if !strings.Contains(want, "interrupted\nlater connected to the peer: True") {
		t.Fatalf("the bare run did not interrupt and then connect: %q", want)
	}
	r := supervise(t, pol, argv, opts...)
	if r.stdout != want || r.code != wantCode {
		t.Errorf("under vigil %q, exit %d; alone %q, exit %d", r.stdout, r.code, want, wantCode)
	}
	recs := r.find("connect", "")
	if len(recs) == 0 || !recs[len(recs)-1].Emulated || errno != "-" && !slices.Contains(strings.Split(errno, "|"), recs[len(recs)-1].Errno) {
		t.Errorf("the interrupted connect was not emulated and answered %q: %v", errno, recs)
	}
}

// nonLoopbackAddr is one of this machine's addresses that is neither
// loopback nor link-local.
func nonLoopbackAddr(t *testing.T) netip.Addr {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if ip = ip.Unmap(); ok && ip.IsGlobalUnicast() || ok && ip.IsPrivate() {
			return ip
		}
	}
	t.Skip("this machine has no address but loopback and link-local ones")
	return netip.Addr{}
}

// fifoAndPolicy makes a FIFO in a test directory and a policy under which
// opening it for writing is a content-dependent decision, so vigil emulates
// the open (its rule denies writes to a directory nobody uses).
func fifoAndPolicy(t *testing.T) (string, *policy.Policy) {
	t.Helper()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	pol := mustPolicy(t, fmt.Sprintf(`version: 1
rules:
  - syscalls: [open, openat]
    match:
      path: [%q]
      flags: { any: [O_WRONLY, O_RDWR, O_CREAT, O_TRUNC] }
    action: deny
`, filepath.Join(dir, "protected", "**")))
	return fifo, pol
}

// TestSignalsInterruptABlockingFIFOOpenAsAlone: vigil waits for the FIFO's
// other end off the receiver while the watchee's wait no longer wakes for
// signals (WAIT_KILLABLE_RECV); a signal it would have handled alone still
// ends or restarts the open as the kernel's interrupted wait does — python's
// alarm handler raising out of open (it hung, unkillable even by timeout's
// SIGTERM, before vigil answered ERESTARTSYS), bash's CHLD trap with the
// open restarted (SA_RESTART), and a stop and continue.
func TestSignalsInterruptABlockingFIFOOpenAsAlone(t *testing.T) {
	testenv.RequirePrivileged(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatalf("python3: %v", err)
	}
	fifo, pol := fifoAndPolicy(t)
	read := filepath.Join(filepath.Dir(fifo), "read")
	alarm := `
import signal
def h(*a): raise TimeoutError
signal.signal(signal.SIGALRM, h)
signal.alarm(1)
try: open(%q, "w")
except TimeoutError: print("interrupted")
`
	for _, argv := range [][]string{
		{"timeout", "-s", "KILL", "20", "python3", "-c", fmt.Sprintf(alarm, fifo)},
		// The reader writes to a file, printed last: its output and the
		// writer's would race for stdout.
		{"timeout", "-s", "KILL", "20", "bash", "-c", "(sleep 1; cat " + fifo + " > " + read + ") & trap 'n=$((n+1))' CHLD; sleep 0.2 & exec 3>" + fifo + "; echo opened; echo data >&3; exec 3>&-; wait; cat " + read},
		{"timeout", "-s", "KILL", "20", "sh", "-c", "(sleep 1; cat " + fifo + " > " + read + ") & sh -c 'echo data > " + fifo + "' & p=$!; sleep 0.2; kill -STOP $p; sleep 0.2; kill -CONT $p; wait $p; echo writer $?; wait; cat " + read},
	} {
		want, wantCode := bare(t, argv...)
		r := supervise(t, pol, argv)
		if r.stdout != want || r.code != wantCode {
			t.Errorf("%v: under vigil %q, exit %d; alone %q, exit %d", argv[4:], r.stdout, r.code, want, wantCode)
		}
		if recs := r.find("openat", fifo); len(recs) == 0 || !recs[0].Emulated {
			t.Errorf("%v: the FIFO open was not emulated: %v", argv[4:], recs)
		}
	}
}

// TestABlockingFIFOOpenEndsWhenTheWatcheeGivesUp: an emulated open of a FIFO
// that waits for a reader runs off the receiver; when the watchee is killed
// while it waits (timeout's SIGTERM), vigil stops waiting too and the run
// ends as it does alone, instead of holding the open forever. A reader that
// comes gets the writer's data, as without vigil. A reader that comes right
// after the writer was killed waits, as alone: vigil let go of its end at the
// writer's death, not at its next check that the writer still waits (cat
// read vigil's abandoned end and exited 0 before whileWaiting).
func TestABlockingFIFOOpenEndsWhenTheWatcheeGivesUp(t *testing.T) {
	testenv.RequirePrivileged(t)
	fifo, pol := fifoAndPolicy(t)
	for _, argv := range [][]string{
		{"timeout", "1", "sh", "-c", "echo x > " + fifo},
		{"sh", "-c", "echo x > " + fifo + " & cat " + fifo + "; wait"},
		{"sh", "-c", "timeout 1 sh -c 'echo x > " + fifo + "'; timeout 1 cat " + fifo + "; echo reader $?"},
	} {
		want, wantCode := bare(t, argv...)
		r := supervise(t, pol, argv)
		if r.stdout != want || r.code != wantCode {
			t.Errorf("%v: under vigil %q, exit %d; alone %q, exit %d", argv, r.stdout, r.code, want, wantCode)
		}
		if recs := r.find("openat", fifo); len(recs) == 0 || !recs[0].Emulated {
			t.Errorf("%v: the FIFO open was not emulated: %v", argv, recs)
		}
	}
}
