package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

var vigilBin string

func TestMain(m *testing.M) {
	if vigilBin = os.Getenv("VIGIL_BIN"); vigilBin != "" {
		// A prebuilt vigil: scripts/kernel-matrix.sh runs this test binary
		// in virtual machines that have no Go toolchain to spare.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "vigil-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	vigilBin = filepath.Join(dir, "vigil")
	if out, err := exec.Command("go", "build", "-o", vigilBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building vigil: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// vigil runs the vigil binary and returns its output and its status as a
// shell reports it (128+signal when a signal ended it).
func vigil(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(vigilBin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("vigil %v: %v", args, err)
		}
		code = shellStatus(ee.ProcessState)
	}
	return o.String(), e.String(), code
}

// shellStatus is ps's status as a shell reports it: the exit code, or
// 128+signal for a process a signal killed.
func shellStatus(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyCheckReportsPositionsAndExits2(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       string // regexp matched against stderr, after the file name
	}{
		{"unknown key", "version: 1\nrules:\n  - syscalls: [open]\n    action: deny\n    colour: red\n", `:5:5: .*colour`},
		{"unknown syscall", "version: 1\nrules:\n  - syscalls: [opne]\n    action: deny\n", `:3:16: .*opne`},
		{"bad glob", "version: 1\nrules:\n  - syscalls: [open]\n    match: { path: [\"/a/b**c\"] }\n    action: deny\n", `:4:21: `},
		{"bad cidr", "version: 1\nrules:\n  - syscalls: [connect]\n    match: { addr: [\"10.0.0.0/33\"] }\n    action: deny\n", `:4:21: `},
		{"unknown errno", "version: 1\nrules:\n  - syscalls: [open]\n    action: deny\n    errno: ENOPE\n", `:5:12: .*ENOPE`},
		{"unknown flag", "version: 1\nrules:\n  - syscalls: [open]\n    match: { flags: { any: [O_WRONGLY] } }\n    action: deny\n", `:4:29: .*O_WRONGLY`},
		{"empty file", "", `:1:1: `},
		{"wrong version", "version: 2\nrules: []\n", `:1:10: .*version`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, "p.yaml", tc.yaml)
			_, stderr, code := vigil(t, "policy", "check", p)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr %q", code, stderr)
			}
			re := regexp.MustCompile(regexp.QuoteMeta(p) + tc.want)
			if !re.MatchString(stderr) {
				t.Fatalf("stderr %q does not match %s%s", stderr, p, tc.want)
			}
		})
	}
	p := writeFile(t, "ok.yaml", "version: 1\nrules:\n  - syscalls: [openat]\n    action: log\n")
	if out, stderr, code := vigil(t, "policy", "check", p); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("valid policy: exit %d, out %q, err %q", code, out, stderr)
	}
}

func TestRunWithBadPolicyExits2(t *testing.T) {
	p := writeFile(t, "p.yaml", "version: 1\nrules:\n  - syscalls: [open]\n    action: maybe\n")
	_, stderr, code := vigil(t, "run", "--policy", p, "--", "true")
	if code != 2 || !strings.Contains(stderr, p+":4:") {
		t.Fatalf("exit %d stderr %q", code, stderr)
	}
}

// auditRecords reads the records of a --log file (skipping vigil's own
// diagnostics, which the file also holds).
func auditRecords(t *testing.T, path string) []audit.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, err := audit.ReadRecords(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

func TestCatShadowFollowsThePolicy(t *testing.T) {
	testenv.RequirePrivileged(t)
	shadow, err := os.ReadFile("/etc/shadow")
	if err != nil {
		t.Fatalf("reading /etc/shadow: %v", err)
	}
	deny := writeFile(t, "deny.yaml", `version: 1
rules:
  - name: no-shadow
    syscalls: [open, openat, openat2]
    match: { path: ["/etc/shadow"] }
    action: deny
    errno: EACCES
`)
	allow := writeFile(t, "allow.yaml", `version: 1
default: deny
rules:
  - name: shadow-ok
    syscalls: [openat]
    match: { path: ["/etc/shadow", "/etc/ld.so.cache", "/lib/**", "/usr/lib/**", "/usr/lib64/**"] }
    action: allow
`)
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	stdout, stderr, code := vigil(t, "run", "--policy", deny, "--log", log, "--", "cat", "/etc/shadow")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "cat: /etc/shadow: Permission denied") {
		t.Fatalf("denied: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	if !hasRecord(auditRecords(t, log), "/etc/shadow", "no-shadow", "deny") {
		t.Fatalf("no deny record naming rule no-shadow in %s", log)
	}
	log2 := filepath.Join(t.TempDir(), "audit.jsonl")
	stdout, stderr, code = vigil(t, "run", "--policy", allow, "--log", log2, "--", "cat", "/etc/shadow")
	if code != 0 || stdout != string(shadow) {
		t.Fatalf("allowed: exit %d stderr %q, stdout differs from /etc/shadow", code, stderr)
	}
	if !hasRecord(auditRecords(t, log2), "/etc/shadow", "shadow-ok", "allow") {
		t.Fatalf("no allow record naming rule shadow-ok in %s", log2)
	}
}

func hasRecord(recs []audit.Record, path, rule, action string) bool {
	for _, r := range recs {
		if r.Args.Path == path && r.Rule == rule && r.Action == action {
			return true
		}
	}
	return false
}

func TestExitStatusIsTheWatchees(t *testing.T) {
	testenv.RequirePrivileged(t)
	for _, tc := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 7", 7},
		{"kill -TERM $$", 128 + int(syscall.SIGTERM)},
	} {
		_, stderr, code := vigil(t, "run", "--", "sh", "-c", tc.script)
		if code != tc.want {
			t.Errorf("sh -c %q: exit %d, want %d (stderr %q)", tc.script, code, tc.want, stderr)
		}
	}
	_, stderr, code := vigil(t, "run", "--", "/nonexistent/cmd")
	if code != 127 || !strings.Contains(stderr, "command not found") {
		t.Errorf("missing command: exit %d stderr %q", code, stderr)
	}
	// A shell's 126: the name leads to something that cannot be executed.
	for name, why := range map[string]string{t.TempDir(): "is a directory", writeFile(t, "not-executable", "echo hi\n"): "permission denied"} {
		if _, stderr, code := vigil(t, "run", "--", name); code != 126 || !strings.Contains(stderr, why) {
			t.Errorf("%s: exit %d stderr %q, want 126 and %q", name, code, stderr, why)
		}
	}
}

// TestScriptWithoutShebangRunsAsAlone: execvp(3) — and so env, timeout,
// nice — runs an executable file without "#!" with /bin/sh; so must vigil.
func TestScriptWithoutShebangRunsAsAlone(t *testing.T) {
	testenv.RequirePrivileged(t)
	script := writeFile(t, "noshebang", "echo ran \"$0\" \"$@\"\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	alone, err := exec.Command("env", script, "a b", "c").CombinedOutput()
	if err != nil {
		t.Fatalf("alone: %v\n%s", err, alone)
	}
	out, stderr, code := vigil(t, "run", "--log", os.DevNull, "--", script, "a b", "c")
	if code != 0 || out != string(alone) {
		t.Errorf("under vigil: exit %d, output %q (stderr %q); alone: %q", code, out, stderr, alone)
	}
}

// TestClosedStandardDescriptorsStayClosed: a command started with `<&-` or
// `>&-` finds that descriptor closed, and `echo hi >&-` fails with EBADF.
// Under vigil (run and observe) it found /dev/null there, which the Go
// runtime opens in place of a closed 0, 1 or 2, and the echo succeeded.
func TestClosedStandardDescriptorsStayClosed(t *testing.T) {
	testenv.RequirePrivileged(t)
	out := filepath.Join(t.TempDir(), "out")
	script := `for f in 0 1 2; do if [ -e /proc/$$/fd/$f ]; then echo "$f open"; else echo "$f closed"; fi >> "$0"; done
echo hi; echo "echo: $?" >> "$0"`
	states := func(starter, redirect string) string {
		t.Helper()
		os.Remove(out)
		if b, err := exec.Command("sh", "-c", starter+` bash -c '`+script+`' "$0" `+redirect, out).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", starter, redirect, err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, redirect := range []string{"<&-", ">&-", "2>&-", "<&- >&- 2>&-"} {
		alone := states("", redirect)
		for _, starter := range []string{vigilBin + " run --log /dev/null --", vigilBin + " observe -o /dev/null --"} {
			if got := states(starter, redirect); got != alone {
				t.Errorf("%s with %s:\n%s\nalone:\n%s", starter, redirect, got, alone)
			}
		}
	}
}

// TestIgnoredSignalsAreInheritedAsAlone: a command inherits the signals its
// starter left ignored or blocked — a shell's background job SIGINT and SIGQUIT, nohup's
// SIGHUP, a shell trap that ignores TERM — and so must it under vigil, whose Go runtime
// replaces almost every disposition with a handler that exec resets.
func TestIgnoredSignalsAreInheritedAsAlone(t *testing.T) {
	testenv.RequirePrivileged(t)
	const show = `grep SigIgn /proc/self/status`
	run := func(cmd string) string {
		t.Helper()
		out, err := exec.Command("sh", "-c", `trap "" TERM QUIT PIPE USR1; exec `+cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
		return string(out)
	}
	alone := run(`sh -c '` + show + `'`)
	if got := run(vigilBin + ` run --log /dev/null -- sh -c '` + show + `'`); got != alone {
		t.Errorf("under vigil the command starts with %q, alone with %q", got, alone)
	}
	// And with the signals its starter blocked still blocked.
	blocked := func(argv ...string) string {
		t.Helper()
		prog := `import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR2})
os.execvp(sys.argv[1], sys.argv[1:])`
		out, err := exec.Command("python3", append([]string{"-c", prog}, argv...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", argv, err, out)
		}
		return string(out)
	}
	show2 := []string{"grep", "SigBlk", "/proc/self/status"}
	alone = blocked(show2...)
	if got := blocked(append([]string{vigilBin, "run", "--log", os.DevNull, "--"}, show2...)...); got != alone {
		t.Errorf("under vigil the command starts with %q blocked, alone with %q", got, alone)
	}
}

// TestVigilUnderVigilSaysWhy: a supervised process cannot start its own
// supervisor (the hardening refuses new seccomp listeners to watchees); the
// inner vigil exits 2 with a message that says so, whole (the init step's
// report was cut at 64 bytes before).
func TestVigilUnderVigilSaysWhy(t *testing.T) {
	testenv.RequirePrivileged(t)
	_, stderr, code := vigil(t, "run", "--log", os.DevNull, "--", vigilBin, "run", "--", "true")
	if code != 2 || !strings.Contains(stderr, "already runs under (is it supervised? vigil under vigil is not supported)") {
		t.Errorf("vigil under vigil: exit %d, stderr %q", code, stderr)
	}
}

// TestSignalsAreForwardedToTheWatchee: a signal sent to `vigil run` or
// `vigil observe` reaches the command as it would reach the command alone:
// the termination signals, and those programs are told things with (SIGUSR1
// was caught and dropped before, so the command never saw it: dd's progress
// report, a daemon's log reopening). The command signals readiness through
// a file, after its trap is set.
func TestSignalsAreForwardedToTheWatchee(t *testing.T) {
	testenv.RequirePrivileged(t)
	const dies = `: > "$0"; exec sleep 30`
	const traps = `trap "exit 7" WINCH; : > "$0"; while :; do sleep 0.05; done`
	for _, c := range []struct {
		sig    syscall.Signal
		script string
		want   int
	}{
		{syscall.SIGTERM, dies, 128 + int(syscall.SIGTERM)},
		{syscall.SIGUSR1, dies, 128 + int(syscall.SIGUSR1)},
		{syscall.SIGUSR2, dies, 128 + int(syscall.SIGUSR2)},
		{syscall.SIGALRM, dies, 128 + int(syscall.SIGALRM)},
		{syscall.SIGWINCH, traps, 7},
	} {
		for _, sub := range [][]string{{"run", "--log", os.DevNull}, {"observe", "-o", os.DevNull}} {
			t.Run(sub[0]+"/"+unix.SignalName(c.sig), func(t *testing.T) {
				forwardOne(t, sub, c.sig, c.script, c.want)
			})
		}
	}
}

// forwardOne runs script under vigil's subcommand sub, sends sig to vigil
// once the script is ready and checks vigil's exit status.
func forwardOne(t *testing.T, sub []string, sig syscall.Signal, script string, want int) {
	ready := filepath.Join(t.TempDir(), "ready")
	args := append(sub[:len(sub):len(sub)], "--", "bash", "-c", script, ready)
	cmd := exec.Command(vigilBin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Signal once the command has set its trap: before that there is no
	// watchee to forward to (loading the eBPF programs takes a while on a
	// busy machine).
	waitForFile(t, ready)
	_ = cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("vigil did not end after %v", sig)
	}
	if got := shellStatus(cmd.ProcessState); got != want {
		t.Fatalf("exit %d, want %d", got, want)
	}
}

// TestCtrlCReachesTheCommandOnce: the terminal sends Ctrl-C's SIGINT to its
// foreground process group, which holds vigil (run or observe) and the
// command; vigil must not forward its copy too, or a program counting
// interrupts ("press Ctrl-C again to force quit") sees two (observe did).
// Compared with the command alone on the same kind of terminal.
func TestCtrlCReachesTheCommandOnce(t *testing.T) {
	testenv.RequirePrivileged(t)
	const counter = `import signal, sys, time, pathlib
n = 0
def h(s, f):
    global n
    n += 1
signal.signal(signal.SIGINT, h)
pathlib.Path(sys.argv[1] + ".ready").touch()
t = time.time()
while n == 0 and time.time() - t < 20:
    time.sleep(0.01)
time.sleep(0.5)
pathlib.Path(sys.argv[1]).write_text(str(n))
`
	interrupts := func(argv ...string) string {
		t.Helper()
		out := filepath.Join(t.TempDir(), "count")
		argv = append(argv, "python3", "-c", counter, out)
		if _, err := interruptInPty(t, argv, out+".ready"); err != nil {
			t.Fatalf("%v: %v", argv[:1], err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	alone := interrupts()
	if got := interrupts(vigilBin, "run", "--log", os.DevNull, "--"); got != alone {
		t.Errorf("the command saw %s SIGINTs under vigil for one Ctrl-C, %s alone", got, alone)
	}
	if got := interrupts(vigilBin, "observe", "-o", os.DevNull, "--"); got != alone {
		t.Errorf("the command saw %s SIGINTs under vigil observe for one Ctrl-C, %s alone", got, alone)
	}
}

// TestACommandKilledByASignalEndsVigilByIt: the parent of `vigil run` or
// `vigil observe` sees what it would see without vigil when the command is
// killed by a signal (a shell's "Segmentation fault", python's negative
// returncode), and an exit status above 128 stays an exit status. A bash
// script whose foreground command dies of the terminal's Ctrl-C stops there
// (bash then kills itself with SIGINT); a vigil that exited 130 instead
// let the script run on.
func TestACommandKilledByASignalEndsVigilByIt(t *testing.T) {
	testenv.RequirePrivileged(t)
	status := func(argv ...string) string {
		t.Helper()
		cmd := exec.Command(argv[0], argv[1:]...)
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("%v: %v", argv, err)
		}
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return "killed by " + ws.Signal().String()
		}
		return fmt.Sprintf("exit %d", ws.ExitStatus())
	}
	for _, script := range []string{"kill -SEGV $$", "kill -TERM $$", "exit 139"} {
		alone := status("sh", "-c", script)
		for _, sub := range [][]string{{"run", "--log", os.DevNull}, {"observe", "-o", os.DevNull}} {
			argv := append(append([]string{vigilBin}, sub...), "--", "sh", "-c", script)
			if got := status(argv...); got != alone {
				t.Errorf("vigil %s -- sh -c %q: %s, alone %s", sub[0], script, got, alone)
			}
		}
	}

	// A script in a terminal, interrupted while its command runs.
	interrupted := func(prefix string) (after bool, how string) {
		t.Helper()
		dir := t.TempDir()
		ready, afterFile := filepath.Join(dir, "ready"), filepath.Join(dir, "after")
		script := fmt.Sprintf("%s sh -c 'touch %s; exec sleep 30'; touch %s", prefix, ready, afterFile)
		ps, _ := interruptInPty(t, []string{"bash", "-c", script}, ready)
		_, err := os.Stat(afterFile)
		ws := ps.Sys().(syscall.WaitStatus)
		return err == nil, fmt.Sprintf("signaled %v, status %d", ws.Signaled(), ws.ExitStatus())
	}
	aloneAfter, aloneHow := interrupted("")
	if aloneAfter {
		t.Fatalf("alone, bash ran on after Ctrl-C (%s): this bash does not stop a script at an interrupted command", aloneHow)
	}
	if after, how := interrupted(vigilBin + " run --log /dev/null --"); after {
		t.Errorf("bash ran on after Ctrl-C ended the command under vigil (%s; alone: %s)", how, aloneHow)
	}
}

// TestDescriptorsTheParentLeftOpenReachTheCommand: what vigil's parent
// leaves open beyond stdin, stdout and stderr (a shell's `3>file`, make's
// jobserver pipe, systemd's LISTEN_FDS sockets) reaches the command under
// the same numbers, as alone. vigil's own descriptors for the init step
// used to take fds 3 to 5 in the child: make under vigil warned "jobserver
// unavailable" and ran its sub-make with -j1.
func TestDescriptorsTheParentLeftOpenReachTheCommand(t *testing.T) {
	testenv.RequirePrivileged(t)
	dir := t.TempDir()
	const script = `echo three >&3; echo nine >&9; cat <&4; ls /proc/self/fd | sort -n | tr '\n' ' '`
	run := func(prefix ...string) string {
		t.Helper()
		three, err := os.Create(filepath.Join(dir, "three"))
		if err != nil {
			t.Fatal(err)
		}
		defer three.Close()
		nine, err := os.Create(filepath.Join(dir, "nine"))
		if err != nil {
			t.Fatal(err)
		}
		defer nine.Close()
		four, err := os.Open("/etc/hostname")
		if err != nil {
			t.Fatal(err)
		}
		defer four.Close()
		argv := append(prefix, "sh", "-c", script)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.ExtraFiles = []*os.File{three, four, nil, nil, nil, nil, nine}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v", argv, err)
		}
		b3, _ := os.ReadFile(three.Name())
		b9, _ := os.ReadFile(nine.Name())
		return fmt.Sprintf("stdout %q, fd 3 got %q, fd 9 got %q", out, b3, b9)
	}
	alone := run()
	for _, sub := range [][]string{{"run", "--log", os.DevNull}, {"observe", "-o", os.DevNull}} {
		if got := run(append([]string{vigilBin}, append(sub, "--")...)...); got != alone {
			t.Errorf("vigil %s: %s\nalone: %s", sub[0], got, alone)
		}
	}

	// GNU make hands its jobserver to a sub-make through inherited fds.
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make (scripts/deps.sh installs it): %v", err)
	}
	mk := filepath.Join(dir, "mk")
	if err := os.MkdirAll(filepath.Join(mk, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"Makefile":     "all:\n\t+$(VIGIL) $(MAKE) -s -C sub\n",
		"sub/Makefile": "all: a b\na b:\n\t@echo $@\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(mk, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("make", "-s", "-j2", "-C", mk, "VIGIL="+vigilBin+" run --log /dev/null --").CombinedOutput()
	if err != nil || strings.Contains(string(out), "jobserver unavailable") {
		t.Errorf("make -j2 with a sub-make under vigil: %v\n%s", err, out)
	}
}

// interruptInPty runs argv in a session of its own with a new pty as its
// controlling terminal (so it runs in the terminal's foreground process
// group, as a shell's foreground job does), waits until the file ready
// exists, types ^C and returns how argv ended.
func interruptInPty(t *testing.T, argv []string, ready string) (*os.ProcessState, error) {
	t.Helper()
	master, slave := openPty(t)
	defer master.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	go func() { _, _ = io.Copy(io.Discard, master) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("%v: did not get ready", argv)
		}
	}
	if _, err := master.Write([]byte{0x03}); err != nil { // ^C
		t.Fatal(err)
	}
	err := cmd.Wait()
	return cmd.ProcessState, err
}

// openPty returns a new pseudo-terminal's master and slave ends.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// TestStopSignalAfterTheCommandExitedEndsSupervision: a command that
// leaves a daemon under the filter (fakeroot's faked does) keeps vigil
// supervising it, like strace -f; but once the command has exited, a
// termination signal — timeout's, Ctrl-C — must end vigil run with the
// command's status instead of being forwarded to nobody. The daemon is left
// running (its trapped calls fail with ENOSYS: TestKilledSupervisorGrantsNothing).
func TestStopSignalAfterTheCommandExitedEndsSupervision(t *testing.T) {
	testenv.RequirePrivileged(t)
	pidFile := filepath.Join(t.TempDir(), "daemon.pid")
	cmd := exec.Command(vigilBin, "run", "--log", os.DevNull, "--", "sh", "-c", "sleep 300 & echo $! > "+pidFile+"; exit 3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	// Wait until the command is gone and vigil still runs for the daemon.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(pidFile); err == nil && !hasChild(cmd.Process.Pid, "sh") {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("vigil ended while the daemon ran: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("the command did not exit within 30 s")
		}
	}
	// Until vigil exits: the first signal may come between the command's
	// reaping and vigil taking note of it.
	for deadline := time.Now().Add(30 * time.Second); ; {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			if got := cmd.ProcessState.ExitCode(); got != 3 {
				t.Fatalf("exit %d, want the command's 3", got)
			}
			return
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("vigil kept waiting for the daemon after SIGTERM")
		}
	}
}

// hasChild reports whether process pid has a child running comm.
func hasChild(pid int, comm string) bool {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, c := range strings.Fields(string(b)) {
			if name, _ := os.ReadFile("/proc/" + c + "/comm"); strings.TrimSpace(string(name)) == comm {
				return true
			}
		}
	}
	return false
}

// TestReaderGoneDoesNotEndSupervision: `vigil run -- cmd 2>&1 | head` — once
// the reader has gone, vigil's next audit record meets a broken pipe. That
// must cost the record, not the run: before, SIGPIPE ended vigil and the
// command with it, halfway through its work.
func TestReaderGoneDoesNotEndSupervision(t *testing.T) {
	testenv.RequirePrivileged(t)
	dir := t.TempDir()
	closed, after := filepath.Join(dir, "closed"), filepath.Join(dir, "after")
	script := fmt.Sprintf(`echo a; while [ ! -e %s ]; do sleep 0.05; done; /bin/true; touch %s`, closed, after)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// The default policy logs every exec at info, on stderr.
	cmd := exec.Command(vigilBin, "run", "--", "sh", "-c", script)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() && sc.Text() != "a" {
	}
	r.Close() // the reader is gone
	if err := os.WriteFile(closed, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("vigil: %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("vigil did not exit")
	}
	if _, err := os.Stat(after); err != nil {
		t.Errorf("the command did not finish its work: %v", err)
	}
}

// TestKilledSupervisorGrantsNothing kills vigil with SIGKILL while a
// background descendant keeps opening a denied file: that descendant must
// neither hang nor ever read the file (its calls fail with ENOSYS once
// nobody answers), and the direct child dies with vigil.
func TestKilledSupervisorGrantsNothing(t *testing.T) {
	testenv.RequirePrivileged(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("TOPSECRET\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pol := writeFile(t, "p.yaml", fmt.Sprintf(`version: 1
rules:
  - syscalls: [open, openat]
    match: { path: [%q] }
    action: deny
`, secret))
	out := filepath.Join(dir, "out")
	const iterations = 300
	// Only shell builtins and cat run in the loop: after the kill every
	// trapped call (cat's own library opens included) fails with ENOSYS.
	script := fmt.Sprintf(`(i=0; while [ $i -lt %d ]; do cat %s 2>&1; i=$((i+1)); sleep 0.01; done > %s) & sleep 30`, iterations, secret, out)
	cmd := exec.Command(vigilBin, "run", "--policy", pol, "--", "sh", "-c", script)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill vigil once it supervises the loop (its first denial is out),
	// however slow the machine (the kernel matrix runs this under emulation).
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(out); strings.Contains(string(b), "Operation not permitted") {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("the supervised loop made no denied call within 60 s")
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	// Hung means no progress for a while, not slow: under emulation the
	// loop needs minutes.
	var s string
	lastLines, lastProgress := -1, time.Now()
	for {
		b, _ := os.ReadFile(out)
		s = string(b)
		n := strings.Count(s, "\n")
		if n >= iterations {
			break
		}
		if n != lastLines {
			lastLines, lastProgress = n, time.Now()
		}
		if time.Since(lastProgress) > 30*time.Second {
			t.Fatalf("background watchee hung after its supervisor was killed: %d of %d iterations:\n%s",
				strings.Count(s, "\n"), iterations, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(s, "TOPSECRET") {
		t.Fatalf("the denied file was read after the supervisor died:\n%s", s)
	}
	// Before the kill: vigil's EPERM. After: ENOSYS, which ld.so reports as
	// "Error 38" when cat cannot even load libc.
	if !strings.Contains(s, "Operation not permitted") ||
		!(strings.Contains(s, "Function not implemented") || strings.Contains(s, "Error 38")) {
		t.Fatalf("want denials before the kill and ENOSYS after it, got:\n%s", s)
	}
}

// TestPolicyCheckExplainsThePlan: --explain says, per trapped syscall, how an
// allow that looked at pointer arguments is made safe, and what must run.
func TestPolicyCheckExplainsThePlan(t *testing.T) {
	p := writeFile(t, "p.yaml", "version: 1\nrules:\n"+
		"  - syscalls: [openat]\n    match: { path: [\"/etc/shadow\"] }\n    action: deny\n"+
		"  - syscalls: [unlink]\n    match: { path: [\"/etc/**\"] }\n    action: deny\n"+
		"  - syscalls: [execve]\n    action: log\n"+
		"  - syscalls: [connect]\n    match: { addr: [\"10.0.0.0/8\"] }\n    action: deny\n")
	out, stderr, code := vigil(t, "policy", "check", "--explain", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	rows := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			rows[f[0]] = l
		}
	}
	for name, want := range map[string]string{
		"openat":  "eBPF binding for reads",
		"unlink":  "vigil performs it",
		"execve":  "the verdict is by number",
		"connect": "vigil performs IP connects",
		"sendmsg": "connect's rules",
		"sendto":  "with a destination",
		"needs:":  "eBPF binding yes, emulation engine yes",
	} {
		if !strings.Contains(rows[name], want) {
			t.Errorf("%s: row %q lacks %q\n%s", name, rows[name], want, out)
		}
	}
	// A policy that can only deny needs neither mechanism.
	deny := writeFile(t, "d.yaml", "version: 1\ndefault: deny\nrules:\n  - syscalls: [openat]\n    match: { path: [\"/etc/**\"] }\n    action: deny\n")
	out, _, code = vigil(t, "policy", "check", "--explain", deny)
	if code != 0 || !strings.Contains(out, "only denials depend on the arguments") || !strings.Contains(out, "eBPF binding no, emulation engine no") {
		t.Errorf("deny-only policy explained as:\n%s", out)
	}
}

// waitForFile waits until name exists.
func waitForFile(t *testing.T, name string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(name); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s did not appear within 20s", name)
}
