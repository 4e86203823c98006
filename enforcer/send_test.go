package enforcer_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// udpSink counts the datagrams that reach a loopback UDP port.
type udpSink struct {
	port int
	mu   sync.Mutex
	got  []string
}

func udpListen(t *testing.T) *udpSink {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := &udpSink{port: c.LocalAddr().(*net.UDPAddr).Port}
	go func() {
		b := make([]byte, 2048)
		for {
			n, _, err := c.ReadFrom(b)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.got = append(s.got, string(b[:n]))
			s.mu.Unlock()
		}
	}()
	return s
}

// take returns what arrived so far (after a moment for datagrams in
// flight) and forgets it.
func (s *udpSink) take() []string {
	time.Sleep(50 * time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.got
	s.got = nil
	return g
}

func connectDenyPolicy(t *testing.T, port int) string {
	return fmt.Sprintf(`version: 1
rules:
  - name: no-port
    syscalls: [connect]
    match: { addr: ["127.0.0.1:%d", "[::1]:%d"] }
    action: deny
`, port, port)
}

// resultLine drops the probe's pid line.
func resultLine(out string) string {
	var keep []string
	for _, l := range lines(out) {
		if !strings.HasPrefix(l, "pid=") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// TestSendsThatNameAPeerFollowConnectRules: a policy that denies connecting
// to an address also refuses datagrams sent there with sendto, sendmsg and
// sendmmsg (also as AF_UNSPEC, which udp_sendmsg reads as AF_INET), and TCP
// fast open to it, with an audit record; sends elsewhere behave as bare,
// performed by vigil.
func TestSendsThatNameAPeerFollowConnectRules(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	allowed, denied := udpListen(t), udpListen(t)
	pol := mustPolicy(t, connectDenyPolicy(t, denied.port))
	for _, call := range []string{"sendto", "sendmsg", "sendmmsg"} {
		for _, opt := range []string{"", "unspec"} {
			if opt == "unspec" && call == "sendmmsg" {
				continue
			}
			name := call + " " + opt
			argv := func(port int) []string {
				a := []string{probe, "send", "udp", call, "127.0.0.1", fmt.Sprint(port)}
				if opt != "" {
					a = append(a, opt)
				}
				return a
			}
			want, _ := bare(t, argv(allowed.port)...)
			wantGot := allowed.take()
			r := supervise(t, pol, argv(allowed.port))
			if resultLine(r.stdout) != resultLine(want) {
				t.Errorf("%s allowed: under vigil %q, alone %q", name, resultLine(r.stdout), resultLine(want))
			}
			if got := allowed.take(); strings.Join(got, ",") != strings.Join(wantGot, ",") {
				t.Errorf("%s allowed: the peer got %q under vigil, %q alone", name, got, wantGot)
			}
			if recs := r.find(call, ""); len(recs) == 0 || !recs[0].Emulated {
				t.Errorf("%s allowed: not emulated: %v", name, recs)
			}

			r = supervise(t, pol, argv(denied.port))
			if got := resultLine(r.stdout); got != "err EPERM" {
				t.Errorf("%s denied: %q, want err EPERM", name, got)
			}
			if got := denied.take(); len(got) != 0 {
				t.Errorf("%s denied: the denied peer got %q", name, got)
			}
			recs := r.find(call, "")
			if len(recs) != 1 || recs[0].Rule != "no-port" || recs[0].Action != "deny" {
				t.Fatalf("%s denied: records %v", name, recs)
			}
			if a := recs[0].Args; a.Addr != fmt.Sprintf("127.0.0.1:%d", denied.port) {
				t.Errorf("%s denied: record args %+v", name, a)
			}
		}
	}
}

// TestTCPFastOpenFollowsConnectRules: sendto and sendmsg with MSG_FASTOPEN
// connect as they send; to a denied address they are refused with an audit
// record and no connection, elsewhere the peer gets the data as bare.
func TestTCPFastOpenFollowsConnectRules(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	allowed, denied := listenData(t), listenData(t)
	pol := mustPolicy(t, connectDenyPolicy(t, denied.port))
	for _, call := range []string{"sendto", "sendmsg"} {
		argv := func(port int) []string { return []string{probe, "send", "tcpfo", call, "127.0.0.1", fmt.Sprint(port)} }
		want, _ := bare(t, argv(allowed.port)...)
		wantGot := allowed.take()
		if len(wantGot) != 1 || wantGot[0] != "hello" {
			t.Fatalf("%s bare: the peer got %q (is net.ipv4.tcp_fastopen's client bit off?)", call, wantGot)
		}
		r := supervise(t, pol, argv(allowed.port))
		if resultLine(r.stdout) != resultLine(want) {
			t.Errorf("%s allowed: under vigil %q, alone %q", call, resultLine(r.stdout), resultLine(want))
		}
		if got := allowed.take(); strings.Join(got, ",") != "hello" {
			t.Errorf("%s allowed: the peer got %q", call, got)
		}
		r = supervise(t, pol, argv(denied.port))
		if got := resultLine(r.stdout); got != "err EPERM" {
			t.Errorf("%s denied: %q, want err EPERM", call, got)
		}
		if got := denied.take(); len(got) != 0 {
			t.Errorf("%s denied: the denied peer was reached: %q", call, got)
		}
		if recs := r.find(call, ""); len(recs) != 1 || recs[0].Rule != "no-port" || recs[0].Action != "deny" {
			t.Errorf("%s denied: records %v", call, recs)
		}
	}
}

// dataListener records what each TCP connection sent.
type dataListener struct {
	port int
	mu   sync.Mutex
	got  []string
}

func listenData(t *testing.T) *dataListener {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	d := &dataListener{port: l.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 0, 64)
				buf := make([]byte, 64)
				for {
					n, err := c.Read(buf)
					b = append(b, buf[:n]...)
					if err != nil {
						break
					}
				}
				d.mu.Lock()
				d.got = append(d.got, string(b))
				d.mu.Unlock()
			}()
		}
	}()
	return d
}

func (d *dataListener) take() []string {
	time.Sleep(100 * time.Millisecond)
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.got
	d.got = nil
	return g
}

// unixReceiver is an AF_UNIX datagram socket with SO_PASSCRED that reports
// the sender's credentials and reads the descriptors it was passed.
type unixReceiver struct {
	path string
	fd   int
}

func unixReceive(t *testing.T) *unixReceiver {
	t.Helper()
	dir, err := os.MkdirTemp("", "vigil-dgram-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		t.Fatal(err)
	}
	return &unixReceiver{path: path, fd: fd}
}

// recv returns "data pid=P uid=U gid=G fd:<first line of the passed file>"
// for one datagram, or "" when none is waiting.
func (u *unixReceiver) recv(t *testing.T) string {
	t.Helper()
	buf, oob := make([]byte, 256), make([]byte, 256)
	n, oobn, _, _, err := unix.Recvmsg(u.fd, buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	if err == unix.EAGAIN {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	s := string(buf[:n])
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if cred, err := unix.ParseUnixCredentials(&m); err == nil {
			s += fmt.Sprintf(" pid=%d uid=%d gid=%d", cred.Pid, cred.Uid, cred.Gid)
		}
		if fds, err := unix.ParseUnixRights(&m); err == nil {
			for _, fd := range fds {
				f := os.NewFile(uintptr(fd), "passed")
				b := make([]byte, 64)
				k, _ := f.ReadAt(b, 0)
				f.Close()
				s += " fd:" + strings.SplitN(string(b[:k]), "\n", 2)[0]
			}
		}
	}
	return s
}

// TestUnixDatagramSendsKeepTheWatcheesIdentity: an AF_UNIX datagram sent by
// vigil on the watchee's behalf carries the watchee's descriptors
// (SCM_RIGHTS), and a receiver with SO_PASSCRED sees the watchee's pid and
// uid, not vigil's, also in a user namespace; claimed credentials pass or
// fail as bare; a malformed control message is EINVAL as bare.
func TestUnixDatagramSendsKeepTheWatcheesIdentity(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	recv := unixReceive(t)
	other := unixReceive(t)
	pol := mustPolicy(t, fmt.Sprintf(`version: 1
rules:
  - syscalls: [connect]
    match: { addr: ["unix:%s"] }
    action: deny
`, other.path))
	hostname, err := os.ReadFile("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	wantFd := " fd:" + strings.SplitN(string(hostname), "\n", 2)[0]
	notTrapping := mustPolicy(t, "version: 1\nrules:\n  - syscalls: [getppid]\n    action: allow\n")

	for _, tc := range []struct {
		name string
		opts []string
		ns   bool
	}{
		{"rights", []string{"rights=/etc/hostname"}, false},
		{"own creds", []string{"creds"}, false},
		{"claim pid 1", []string{"claim=1:0:0"}, false},
		{"claim another uid", []string{"claim=0:12345:0"}, false},
		{"bad cmsg", []string{"badcmsg"}, false},
		{"rights in a user namespace", []string{"rights=/etc/hostname"}, true},
		{"claim pid 1 in a user namespace", []string{"claim=1:0:0"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv := append([]string{probe, "send", "dgram", "sendmsg", "unix:" + recv.path}, tc.opts...)
			var opts []runOpt
			if tc.ns {
				opts = append(opts, inUserNS())
			}
			alone := supervise(t, notTrapping, argv, opts...)
			wantMsg := recv.recv(t)
			r := supervise(t, pol, argv, opts...)
			gotMsg := recv.recv(t)
			if resultLine(r.stdout) != resultLine(alone.stdout) {
				t.Fatalf("under vigil %q, alone %q", resultLine(r.stdout), resultLine(alone.stdout))
			}
			if len(r.find("sendmsg", "")) == 0 {
				t.Fatalf("sendmsg was not decided by vigil: %v", r.records)
			}
			// The pids differ between the runs: compare each with its own
			// probe's.
			norm := func(msg, out string) string {
				for _, l := range lines(out) {
					if p, ok := strings.CutPrefix(l, "pid="); ok {
						pid, _, _ := strings.Cut(p, " ")
						msg = strings.Replace(msg, "pid="+pid+" ", "pid=PROBE ", 1)
					}
				}
				return msg
			}
			if norm(gotMsg, r.stdout) != norm(wantMsg, alone.stdout) {
				t.Fatalf("the receiver got %q under vigil, %q alone", gotMsg, wantMsg)
			}
			if strings.HasPrefix(tc.opts[0], "rights") && !strings.Contains(gotMsg, wantFd) {
				t.Fatalf("the passed descriptor is not /etc/hostname: %q", gotMsg)
			}
		})
	}
	// The denied socket is refused whatever the spelling.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(other.path, link); err != nil {
		t.Fatal(err)
	}
	for _, dest := range []string{other.path, link} {
		r := supervise(t, pol, []string{probe, "send", "dgram", "sendto", "unix:" + dest})
		if got := resultLine(r.stdout); got != "err EPERM" {
			t.Errorf("sendto %s: %q, want err EPERM", dest, got)
		}
		if msg := other.recv(t); msg != "" {
			t.Errorf("sendto %s reached the denied socket: %q", dest, msg)
		}
	}
}

// sendRace runs the probe's sendflip against a connect rule denying one
// port and returns how many datagrams reached it.
func sendRace(t *testing.T, mode string, opts ...runOpt) int {
	t.Helper()
	probe := testenv.Bin(t, "probe")
	allowed, denied := udpListen(t), udpListen(t)
	pol := mustPolicy(t, connectDenyPolicy(t, denied.port))
	r := supervise(t, pol, []string{probe, "sendflip", mode, fmt.Sprint(allowed.port), fmt.Sprint(denied.port), "1000"}, opts...)
	a, d := len(allowed.take()), len(denied.take())
	t.Logf("%s: %s; %d datagrams reached the allowed port, %d the denied one", mode, strings.TrimSpace(r.stdout), a, d)
	return d
}

// TestSendDestinationFlipNeverReachesADeniedPeer: a sibling thread flips
// sendmsg's msg_name between NULL (the connected, allowed peer) and a
// denied address, or sendto's port between an allowed and a denied one.
// Continued after vigil read the harmless variant (the naive mode), the
// kernel reads the denied one; emulated, the send uses vigil's copy.
func TestSendDestinationFlipNeverReachesADeniedPeer(t *testing.T) {
	testenv.RequirePrivileged(t)
	for _, mode := range []string{"msg", "to"} {
		t.Run(mode, func(t *testing.T) {
			naiveHits := 0
			for i := 0; i < 8 && naiveHits == 0; i++ {
				naiveHits += sendRace(t, mode, naive())
			}
			if naiveHits == 0 {
				t.Fatalf("%s: no datagram reached the denied port through the naive mode in 8 runs; the race test has no teeth", mode)
			}
			for i := 0; i < 3; i++ {
				if n := sendRace(t, mode); n != 0 {
					t.Fatalf("%s run %d: %d datagrams reached the denied port despite vigil", mode, i, n)
				}
			}
		})
	}
}

// TestRealSoftwareSendsAsBare runs python3 and logger, which send with
// sendto and sendmsg, under a policy whose connect rules govern their sends:
// what they print and what their peers receive is what a bare run gives.
func TestRealSoftwareSendsAsBare(t *testing.T) {
	testenv.RequirePrivileged(t)
	sink, denied := udpListen(t), udpListen(t)
	recv := unixReceive(t)
	pol := mustPolicy(t, connectDenyPolicy(t, denied.port))
	py := `import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print(u.sendto(b"py-udp", ("127.0.0.1", int(sys.argv[1]))))
try:
    u.sendto(b"py-denied", ("127.0.0.1", int(sys.argv[2])))
    print("denied port reached")
except PermissionError as e:
    print("PermissionError")
d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
print(d.sendmsg([b"py-", b"unix"], [], 0, sys.argv[3]))
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.connect(("127.0.0.1", int(sys.argv[1])))
print(c.sendmsg([b"py-connected"]))
`
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatalf("python3: %v", err)
	}
	argv := []string{"python3", "-c", py, fmt.Sprint(sink.port), fmt.Sprint(denied.port), recv.path}
	out, _ := bare(t, argv...)
	wantSink, wantDenied := sink.take(), denied.take()
	wantUnix := recv.recv(t)
	r := supervise(t, pol, argv)
	// Bare, the denied port is reached; under vigil the call is refused.
	want := strings.Replace(out, "denied port reached", "PermissionError", 1)
	if r.stdout != want {
		t.Errorf("python3 under vigil:\n%s\nalone (denied send refused):\n%s", r.stdout, want)
	}
	if got := sink.take(); strings.Join(got, ",") != strings.Join(wantSink, ",") {
		t.Errorf("UDP peer got %q under vigil, %q alone", got, wantSink)
	}
	if len(wantDenied) != 1 {
		t.Errorf("bare python3 should reach the denied port once: %q", wantDenied)
	}
	if got := denied.take(); len(got) != 0 {
		t.Errorf("denied port reached under vigil: %q", got)
	}
	gotUnix := recv.recv(t)
	if strings.Fields(gotUnix)[0] != "py-unix" || strings.Fields(wantUnix)[0] != "py-unix" {
		t.Errorf("unix peer got %q under vigil, %q alone", gotUnix, wantUnix)
	}
	if countEmulated(r) < 3 {
		t.Errorf("only %d sends were emulated: %v", countEmulated(r), r.records)
	}

	// logger(1) sends its message to a datagram socket.
	largv := []string{"logger", "-u", recv.path, "--socket-errors=on", "vigil-logger-test"}
	if _, code := bare(t, largv...); code != 0 {
		t.Fatalf("bare logger exited %d", code)
	}
	wantLog := recv.recv(t)
	r = supervise(t, pol, largv)
	gotLog := recv.recv(t)
	if r.code != 0 || !strings.Contains(gotLog, "vigil-logger-test") || !strings.Contains(wantLog, "vigil-logger-test") {
		t.Errorf("logger under vigil: exit %d, the socket got %q (alone %q)", r.code, gotLog, wantLog)
	}
	if len(r.find("sendmsg", ""))+len(r.find("sendto", "")) == 0 {
		t.Logf("logger made no send vigil decided (it may write(2) to a connected socket): %v", r.records)
	}
	_ = enforcer.Stats{}
}

// TestEmulatedSendsReturnWhatTheKernelWould runs sends without a
// destination that vigil must still perform (sendmsg is trapped whole)
// through the cases an emulation must get right — EAGAIN, a blocking send
// that waits for its reader, SO_SNDTIMEO, EPIPE with the SIGPIPE the kernel
// raises (counted by a handler, and fatal at the default action), EFAULT,
// a sendmmsg stopped by a fault, MSG_ZEROCOPY's completion — and compares
// every line and the exit status with a bare run.
func TestEmulatedSendsReturnWhatTheKernelWould(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	pol := mustPolicy(t, connectDenyPolicy(t, 9))
	cmd := exec.Command(probe, "sendsem")
	cmd.Stderr = os.Stderr
	out, _ := cmd.Output()
	want, wantCode := string(out), cmd.ProcessState.ExitCode()
	if st, ok := cmd.ProcessState.Sys().(interface{ Signal() unix.Signal }); ok && wantCode == -1 {
		wantCode = 128 + int(st.Signal()) // as vigil run reports a signal
	}
	if wantCode != 128+int(unix.SIGPIPE) {
		t.Fatalf("bare probe: exit %d, want death by SIGPIPE", wantCode)
	}
	r := supervise(t, pol, []string{probe, "sendsem"})
	if r.stdout != want || r.code != wantCode {
		t.Fatalf("under vigil (exit %d):\n%s\nalone (exit %d):\n%s", r.code, r.stdout, wantCode, want)
	}
	if n := countEmulated(r); n < 10 {
		t.Fatalf("only %d sends were emulated", n)
	}
}

// TestSignalsInterruptABlockingEmulatedSendAsAlone: a datagram sent to an
// AF_UNIX socket whose queue is full blocks; vigil sends it off the
// receiver while the watchee's wait no longer wakes for signals, and
// python's alarm handler still raises out of sendto after a second, as
// alone (it hung before vigil answered ERESTARTSYS).
func TestSignalsInterruptABlockingEmulatedSendAsAlone(t *testing.T) {
	testenv.RequirePrivileged(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatalf("python3: %v", err)
	}
	dir := t.TempDir()
	pol := mustPolicy(t, fmt.Sprintf("version: 1\nrules:\n  - syscalls: [connect]\n    match: { addr: [\"unix:%s/denied/**\"] }\n    action: deny\n", dir))
	py := `
import os, signal, socket, sys
path = os.path.join(sys.argv[1], "sink")
sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); sink.bind(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.setblocking(False)
queued = 0
try:
    while True: s.sendto(b"x" * 100, path); queued += 1
except BlockingIOError: pass
s.setblocking(True)
def h(*a): raise TimeoutError
signal.signal(signal.SIGALRM, h)
signal.alarm(1)
try: s.sendto(b"y", path); print("sent")
except TimeoutError: print("interrupted after queueing", queued > 0)
os.unlink(path)
`
	argv := []string{"timeout", "-s", "KILL", "60", "python3", "-c", py, dir}
	want, wantCode := bare(t, argv...)
	if want != "interrupted after queueing True\n" {
		t.Fatalf("the bare run: %q", want)
	}
	r := supervise(t, pol, argv)
	if r.stdout != want || r.code != wantCode {
		t.Errorf("under vigil %q, exit %d; alone %q, exit %d", r.stdout, r.code, want, wantCode)
	}
	recs := r.find("sendto", "")
	if len(recs) == 0 || !recs[len(recs)-1].Emulated || recs[len(recs)-1].Errno != "ERESTARTSYS" {
		t.Errorf("the blocked send was not emulated and answered ERESTARTSYS: %v", recs)
	}
}
