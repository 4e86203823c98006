package agent

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// secretPolicy denies opening one file, so a served fake container answers
// EACCES, an abandoned one ENOSYS, and an unfiltered open would succeed.
func secretPolicy(path string) string {
	return "version: 1\nrules:\n  - name: secret\n    syscalls: [openat]\n    match: { path: [\"" + path + "\"] }\n    action: deny\n    errno: EACCES\n"
}

func TestAgentSurvivesMalformedHandoffsWithoutLeakingFds(t *testing.T) {
	testenv.RequirePrivileged(t)
	// Long enough for the oversized case to push a megabyte through before
	// the deadline on a loaded machine (at 500ms, with a load of 20 on two
	// cores, the cap's error once never came), short enough for the stall
	// cases.
	ta := startAgent(t, 2*time.Second)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	writePolicy(t, ta.Dir, DefaultPolicyFile, secretPolicy(secret))
	writePolicy(t, ta.Dir, "bad.yaml", "version: 1\nrules:\n  - syscalls: [openat]\n    action: maybe\n")
	sock := ta.Addr()

	// A container that stays supervised through every bad handoff below.
	keeper := startFakeContainer(t, secret)
	c := dial(t, sock)
	send(t, c, []byte(stateJSON("keeper", "", keeper.Pid())), keeper.Listener)
	c.Close()
	keeper.DropListener()
	ta.Log.waitLine(t, map[string]string{"message": "supervising container", audit.FieldContainer: "keeper"})
	if got := keeper.Open(); got != "EACCES" {
		t.Fatalf("keeper's open of the secret: %s, want EACCES from the policy", got)
	}
	base := stableFds(t)

	refused := map[string]string{"message": "refusing handoff", "level": "error"}
	refusedContainer := map[string]string{"message": "refusing container", "level": "error"}
	withErr := func(base map[string]string, err string) map[string]string {
		m := map[string]string{"err": err}
		for k, v := range base {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name string
		// run sends the handoff; l is the fake container's listener and
		// pid its process, or -1 and 0 for cases that send none.
		run       func(t *testing.T, l, pid int)
		listener  bool
		want      map[string]string
		wantOpen  string // the fake container's open afterwards
		served    string // container id that ends up supervised
		secondMsg bool
	}{
		{name: "fds missing", listener: true, wantOpen: "ENOSYS", want: withErr(refused, `no "fds" list`),
			run: func(t *testing.T, l, pid int) {
				send(t, dial(t, sock), []byte(`{"ociVersion":"1.0.2","pid":1,"state":{"id":"c"}}`), l)
			}},
		{name: "wrong fd name", listener: true, wantOpen: "ENOSYS", want: withErr(refused, `no "seccompFd"`),
			run: func(t *testing.T, l, pid int) {
				send(t, dial(t, sock), []byte(strings.Replace(stateJSON("c", "", pid), "seccompFd", "notifyFd", 1)), l)
			}},
		{name: "extra fds", listener: true, wantOpen: "ENOSYS", want: withErr(refused, "names 1 descriptors but 3 arrived"),
			run: func(t *testing.T, l, pid int) {
				send(t, dial(t, sock), []byte(stateJSON("c", "", pid)), l, devNull(t), devNull(t))
			}},
		{name: "fewer fds than names", listener: true, wantOpen: "ENOSYS", want: withErr(refused, "names 2 descriptors but 1 arrived"),
			run: func(t *testing.T, l, pid int) {
				send(t, dial(t, sock), []byte(strings.Replace(stateJSON("c", "", pid), `["seccompFd"]`, `["seccompFd","pidFd"]`, 1)), l)
			}},
		{name: "no fd attached", want: withErr(refused, "but 0 arrived"),
			run: func(t *testing.T, l, pid int) { send(t, dial(t, sock), []byte(stateJSON("c", "", pid))) }},
		{name: "fd is not a seccomp listener", want: withErr(refusedContainer, "not a seccomp listener"),
			run: func(t *testing.T, l, pid int) { send(t, dial(t, sock), []byte(stateJSON("c", "", pid)), devNull(t)) }},
		{name: "more fds than the control buffer holds", want: withErr(refused, "more than 16 descriptors"),
			run: func(t *testing.T, l, pid int) {
				fds := make([]int, 20)
				for i := range fds {
					fds[i] = devNull(t)
				}
				send(t, dial(t, sock), []byte(stateJSON("c", "", pid)), fds...)
			}},
		{name: "oversized", listener: true, wantOpen: "ENOSYS", want: withErr(refused, "handoff too large"),
			run: func(t *testing.T, l, pid int) {
				c := dial(t, sock)
				send(t, c, []byte(`{"ociVersion":"1.0.2","x":"`), l)
				// The agent stops reading at the cap; do not wait for it.
				go func() {
					c.Write([]byte(strings.Repeat("a", 2*MaxHandoff)))
					c.Close()
				}()
			}},
		{name: "truncated", listener: true, wantOpen: "ENOSYS", want: withErr(refused, "truncated handoff"),
			run: func(t *testing.T, l, pid int) {
				c := dial(t, sock)
				send(t, c, []byte(stateJSON("c", "", pid))[:40], l)
				c.Close()
			}},
		{name: "not JSON", listener: true, wantOpen: "ENOSYS", want: withErr(refused, "malformed handoff"),
			run: func(t *testing.T, l, pid int) { send(t, dial(t, sock), []byte("GET / HTTP/1.0\r\n\r\n"), l) }},
		{name: "unknown major ociVersion", listener: true, wantOpen: "ENOSYS", want: withErr(refused, `unsupported ociVersion "2.0.0"`),
			run: func(t *testing.T, l, pid int) {
				send(t, dial(t, sock), []byte(strings.ReplaceAll(stateJSON("c", "", pid), "1.0.2-dev", "2.0.0")), l)
			}},
		{name: "peer connects and stalls", want: withErr(refused, "sent nothing before the deadline"),
			run: func(t *testing.T, l, pid int) { dial(t, sock) }},
		{name: "peer stalls mid-message", listener: true, wantOpen: "ENOSYS", want: withErr(refused, "no complete JSON object before the deadline"),
			run: func(t *testing.T, l, pid int) {
				send(t, dial(t, sock), []byte(stateJSON("c", "", pid))[:30], l)
			}},
		{name: "invalid policy", listener: true, wantOpen: "ENOSYS", want: withErr(refusedContainer, "invalid policy"),
			run: func(t *testing.T, l, pid int) {
				send(t, dial(t, sock), []byte(stateJSON("c", "policy=bad.yaml", pid)), l)
			}},
		{name: "policy path traversal", listener: true, wantOpen: "ENOSYS", want: withErr(refusedContainer, "not a path"),
			run: func(t *testing.T, l, pid int) {
				send(t, dial(t, sock), []byte(stateJSON("c", "policy=../default.yaml", pid)), l)
			}},
		{name: "unknown metadata key", listener: true, wantOpen: "ENOSYS", want: withErr(refusedContainer, "unknown key"),
			run: func(t *testing.T, l, pid int) {
				send(t, dial(t, sock), []byte(stateJSON("c", "polcy=default.yaml", pid)), l)
			}},
		{name: "any 1.x ociVersion is accepted", listener: true, wantOpen: "EACCES", served: "v1-9",
			want: map[string]string{"message": "supervising container", FieldOCIVersion: "1.9.9"},
			run: func(t *testing.T, l, pid int) {
				send(t, dial(t, sock), []byte(strings.ReplaceAll(stateJSON("v1-9", "", pid), "1.0.2-dev", "1.9.9")), l)
			}},
		{name: "crun's 0.2.0 is accepted", listener: true, wantOpen: "EACCES", served: "crun-1",
			want: map[string]string{"message": "supervising container", FieldOCIVersion: "0.2.0"},
			run: func(t *testing.T, l, pid int) {
				send(t, dial(t, sock), []byte(strings.ReplaceAll(stateJSON("crun-1", "", pid), "1.0.2-dev", "0.2.0")), l)
			}},
		{name: "second message on the same connection", listener: true, wantOpen: "EACCES", served: "twice", secondMsg: true,
			want: map[string]string{"message": "second message", audit.FieldContainer: "twice", "fds": "1"},
			run: func(t *testing.T, l, pid int) {
				c := dial(t, sock)
				send(t, c, []byte(stateJSON("twice", "", pid)), l)
				send(t, c, []byte(stateJSON("twice-again", "", pid)), devNull(t))
				c.Close()
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var fc *fakeContainer
			l, pid := -1, 0
			if tc.listener {
				fc = startFakeContainer(t, secret)
				l, pid = fc.Listener, fc.Pid()
			}
			tc.run(t, l, pid)
			if fc != nil {
				fc.DropListener()
			}
			ta.Log.waitLine(t, tc.want)
			if fc != nil {
				if got := fc.Open(); got != tc.wantOpen {
					t.Fatalf("container's open after the handoff: %s, want %s", got, tc.wantOpen)
				}
				fc.Stop()
			}
			if tc.served != "" {
				ta.Log.waitLine(t, map[string]string{"message": "container released", audit.FieldContainer: tc.served})
			}
		})
		// Every fd the agent received is closed or owned by a supervisor
		// that has ended; the case's own fds and connections were closed by
		// its cleanups.
		fds := 0
		if !settle(func() bool { fds = countFds(t); return fds == base }) {
			t.Fatalf("%s: %d fds open afterwards, want %d", tc.name, fds, base)
		}
	}
	if got := keeper.Open(); got != "EACCES" {
		t.Fatalf("keeper after the bad handoffs: %s, want EACCES", got)
	}
	if n := len(ta.Containers()); n != 1 {
		t.Fatalf("%d containers supervised, want only the keeper", n)
	}
	// The agent never logged a crash or a loop ending.
	if n := ta.Log.count(map[string]string{"message": "notify loop ends"}); n != 0 {
		t.Fatalf("notify loop ended %d times:\n%s", n, ta.Log)
	}
}

func TestAgentRefusesPeersThatAreNotRoot(t *testing.T) {
	testenv.RequirePrivileged(t)
	ta := startAgent(t, time.Second)
	// The socket is 0600 in 0700 directories; open them up so that only
	// SO_PEERCRED stands in the way.
	for _, d := range []string{filepath.Dir(filepath.Dir(ta.Addr())), filepath.Dir(ta.Addr())} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(ta.Addr(), 0o666); err != nil {
		t.Fatal(err)
	}
	// The test binary sits in a 0700 build directory: give nobody a copy.
	exe := worldExecutableCopy(t)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"=peer", envSocket+"="+ta.Addr())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("peer: %v\n%s", err, out)
	}
	ta.Log.waitLine(t, map[string]string{"message": "not root", FieldRuntimeUID: "65534"})
	if n := len(ta.Containers()); n != 0 {
		t.Fatalf("%d containers supervised after a non-root handoff", n)
	}
}

func TestSocketIsRootOnlyAndAStaleOneIsReplaced(t *testing.T) {
	testenv.RequirePrivileged(t)
	ta := startAgent(t, time.Second)
	st, err := os.Stat(ta.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want 0600", st.Mode().Perm())
	}
	// A live agent's socket is not taken over.
	if _, err := Listen(Config{Socket: ta.Addr()}); err == nil || !strings.Contains(err.Error(), "another agent") {
		t.Fatalf("second agent on a live socket: %v", err)
	}
	// A regular file is never removed.
	file := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(Config{Socket: file}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("agent on a regular file: %v", err)
	}
	// A dead agent's socket is replaced.
	stale := filepath.Join(t.TempDir(), "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	a, err := Listen(Config{Socket: stale})
	if err != nil {
		t.Fatalf("agent on a stale socket: %v", err)
	}
	a.Close()
}

func worldExecutableCopy(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// t.TempDir nests in a per-test 0700 directory.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(dir, "agent.test")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}
