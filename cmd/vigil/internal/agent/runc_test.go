package agent

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// ociRuntime is an installed OCI runtime the tests start containers with.
type ociRuntime struct {
	name, path string
	busybox    string
	// hideUnified runs the runtime in a mount namespace of its own without
	// /sys/fs/cgroup/unified: crun refuses a hybrid cgroup host whose v2
	// hierarchy holds any controller, whatever its cgroup manager (see
	// crunRefusesThisCgroupLayout).
	hideUnified bool
}

// requireRuntime skips (or, under VIGIL_REQUIRE_PRIVILEGED=1, fails)
// without root, the runtime and a static busybox.
func requireRuntime(t *testing.T, name string) *ociRuntime {
	t.Helper()
	testenv.RequirePrivileged(t)
	reason := ""
	path, err := exec.LookPath(name)
	if err != nil {
		reason = name + " is not installed (scripts/deps.sh installs it)"
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		reason = "busybox is not installed (scripts/deps.sh installs busybox-static)"
	} else if !static(busybox) {
		reason = busybox + " is dynamically linked; install busybox-static"
	}
	if reason != "" {
		if os.Getenv("VIGIL_REQUIRE_PRIVILEGED") == "1" {
			t.Fatalf("%s test cannot run: %s (VIGIL_REQUIRE_PRIVILEGED=1)", name, reason)
		}
		t.Skip(reason)
	}
	return &ociRuntime{name: name, path: path, busybox: busybox, hideUnified: name == "crun" && crunRefusesThisCgroupLayout()}
}

// crunRefusesThisCgroupLayout reports a hybrid cgroup host (v1 hierarchies
// on a tmpfs at /sys/fs/cgroup, cgroup2 at /sys/fs/cgroup/unified) whose v2
// hierarchy has controllers: crun (1.8.1 and every later release read)
// refuses to create a container there, "cgroups in hybrid mode not
// supported, drop all controllers from cgroupv2", before it looks at its
// cgroup manager. On this kind of machine hugetlb is bound to no v1
// hierarchy, so it sits in v2.
func crunRefusesThisCgroupLayout() bool {
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) != nil || st.Type != unix.TMPFS_MAGIC {
		return false
	}
	if unix.Statfs("/sys/fs/cgroup/unified", &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		return false
	}
	b, err := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
	return err == nil && len(bytes.TrimSpace(b)) > 0
}

func static(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// bundle is an OCI bundle whose rootfs holds a static busybox, /etc/ok and
// /etc/secret, and whose seccomp profile is Profile(web.yaml) for its
// runtime, pointing at the agent's socket.
type bundle struct {
	rt        *ociRuntime
	dir, root string
}

var containerSeq atomic.Int64

// newBundle builds a bundle from `runc spec` running `sh -c script`, with a
// tmpfs on /tmp for the mknod test.
func newBundle(t *testing.T, rt *ociRuntime, sock, script string) *bundle {
	t.Helper()
	return makeBundle(t, rt, sock, func(spec *specs.Spec) {
		spec.Process.Args = []string{"sh", "-c", script}
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}})
	})
}

// newSpecBundle builds the README's container: `runc spec` with terminal
// false (without a terminal runc passes stdin through, so `sh` runs the
// script the test writes to it) and the generated seccomp profile. Nothing
// else differs from runc spec's defaults: read-only root, no new
// privileges, runc's default capabilities, masked and read-only paths.
func newSpecBundle(t *testing.T, rt *ociRuntime, sock string) *bundle {
	t.Helper()
	return makeBundle(t, rt, sock, func(*specs.Spec) {})
}

func makeBundle(t *testing.T, rt *ociRuntime, sock string, edit func(*specs.Spec)) *bundle {
	t.Helper()
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatalf("runc spec makes every test bundle: %v", err)
	}
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "etc", "tmp", "proc", "dev", "sys"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile(rt.busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "cat", "echo", "ls", "mknod", "nc", "usleep", "true"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{"etc/ok": "ok\n", "etc/secret": "the secret\n"} {
		if err := os.WriteFile(filepath.Join(rootfs, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(runc, "spec", "--bundle", dir).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v\n%s", err, out)
	}
	cfgPath := filepath.Join(dir, "config.json")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Load("testdata/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	flags, err := RuntimeFlags(rt.name)
	if err != nil {
		t.Fatal(err)
	}
	prof, err := Profile(pol, ProfileOptions{Socket: sock, Metadata: "policy=web.yaml", Flags: flags})
	if err != nil {
		t.Fatal(err)
	}
	spec.Process.Terminal = false
	spec.Linux.Seccomp = prof
	edit(&spec)
	out, err := json.MarshalIndent(&spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, out, 0o644); err != nil {
		t.Fatal(err)
	}
	// The runtime's state (and runc's exec FIFO) live in a root of the
	// test's own, so nothing collides with other users on the machine.
	return &bundle{rt: rt, dir: dir, root: t.TempDir()}
}

// nextID returns a container id unique on this machine for this run: the
// runtimes also name cgroups after it.
func nextID(prefix string) string {
	return fmt.Sprintf("vigil-%s-%d-%d", prefix, os.Getpid(), containerSeq.Add(1))
}

// command returns `RUNTIME run` of the bundle as container id.
func (b *bundle) command(ctx context.Context, id string) *exec.Cmd {
	args := []string{"--root", b.root, "run", "--bundle", b.dir, id}
	if !b.rt.hideUnified {
		return exec.CommandContext(ctx, b.rt.path, args...)
	}
	// A private mount namespace (Go makes / private in it) without the
	// cgroup2 mount: crun then sees a cgroup v1 host and runs.
	cmd := exec.CommandContext(ctx, b.rt.busybox, append([]string{"sh", "-c",
		`"$0" umount /sys/fs/cgroup/unified && exec "$@"`, b.rt.busybox, b.rt.path}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	return cmd
}

// run runs the container to completion with stdin as its standard input.
func (b *bundle) run(t *testing.T, id, stdin string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := b.command(ctx, id)
	var o, e bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func webPolicyFile(t *testing.T, dir string) {
	t.Helper()
	web, err := os.ReadFile("testdata/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	writePolicy(t, dir, "web.yaml", string(web))
}

// auditOf returns w matching only container id's audit records under
// web.yaml.
func auditOf(id string, w recordWant) recordWant {
	w.Container, w.ListenerMetadata = id, "policy=web.yaml"
	return w
}

func TestContainerFollowsItsPolicy(t *testing.T) {
	for _, name := range []string{"runc", "crun"} {
		t.Run(name, func(t *testing.T) {
			rt := requireRuntime(t, name)
			ta := startAgent(t, DefaultHandoffTimeout)
			webPolicyFile(t, ta.Dir)
			script := `cat /etc/ok
cat /etc/secret; echo "secret=$?"
mknod /tmp/fifo p && echo fifo=ok
mknod /tmp/mem c 1 1; echo "mem=$?"
nc 127.0.0.1 9 </dev/null; echo "nc-denied=$?"
nc 127.0.0.2 80 </dev/null; echo "nc-allowed=$?"
`
			b := newBundle(t, rt, ta.Addr(), script)
			id := nextID("policy")
			stdout, stderr, err := b.run(t, id, "")
			if err != nil {
				t.Fatalf("%s run: %v\nstdout:\n%s\nstderr:\n%s\nagent:\n%s\naudit:\n%s", name, err, stdout, stderr, ta.Log, ta.Audit)
			}
			for _, want := range []string{"ok\n", "secret=1\n", "fifo=ok\n", "mem=1\n", "nc-denied=1\n", "nc-allowed=1\n"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			if strings.Contains(stdout, "the secret") {
				t.Errorf("the container read the denied file:\n%s", stdout)
			}
			for _, want := range []string{
				"can't open '/etc/secret': Permission denied",                  // the policy's EACCES, not the kernel's
				"/tmp/mem: Permission denied",                                  // EACCES from the dev rule (the kernel would say EPERM: no CAP_MKNOD)
				"can't connect to remote host (127.0.0.1): Permission denied",  // the addr rule
				"can't connect to remote host (127.0.0.2): Connection refused", // allowed: the kernel's own answer
			} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			ta.Log.waitLine(t, map[string]string{"message": "supervising container", audit.FieldContainer: id,
				FieldListenerMetadata: "policy=web.yaml", FieldPolicy: "web.yaml"})
			released := ta.Log.waitLine(t, map[string]string{"message": "container released", audit.FieldContainer: id})
			// The policy refused three calls; the connect to 127.0.0.2 was
			// allowed and performed, and the kernel refused it: a kernel
			// error, not a denial (the summary counted it denied before).
			denied, _ := released["denied"].(float64)
			kernelErrors, _ := released["kernel_errors"].(float64)
			if denied != 3 || kernelErrors < 1 {
				t.Errorf("container released with denied %v, kernel_errors %v; want 3 denied and the refused connect a kernel error:\n%s", denied, kernelErrors, ta.Log)
			}
			ta.Audit.waitRecord(t, auditOf(id, recordWant{Syscall: "openat", Rule: "no-secret", Action: "deny", Errno: "EACCES", Arg: "/etc/secret"}))
			ta.Audit.waitRecord(t, auditOf(id, recordWant{Rule: "no-mem-devices", Action: "deny", Arg: "c 1:1"}))
			ta.Audit.waitRecord(t, auditOf(id, recordWant{Syscall: "connect", Rule: "no-metadata-service", Action: "deny", Arg: "127.0.0.1:9"}))
			ta.Audit.waitRecord(t, auditOf(id, recordWant{Syscall: "connect", Rule: "connections", Action: "log", Arg: "127.0.0.2:80"}))
			// The container's processes are watched from the handoff on, so
			// the allowed open was bound and the kernel's object confirmed.
			ta.Audit.waitRecord(t, auditOf(id, recordWant{Syscall: "openat", Action: "allow", Arg: "/etc/ok", Verified: audit.VerifiedKernel}))
		})
	}
}

// TestRuncExecFollowsTheContainersPolicy: `runc exec` (what `docker exec`
// runs) starts a process in a running container with a listener of its own,
// handed to the agent like the first one. It follows the container's
// policy, and its records name the program it runs: runc's init process
// makes trapped calls and then execs that program, which web.yaml does not
// trap, so a record must not name the process by its name before the exec.
func TestRuncExecFollowsTheContainersPolicy(t *testing.T) {
	rt := requireRuntime(t, "runc")
	ta := startAgent(t, DefaultHandoffTimeout)
	webPolicyFile(t, ta.Dir)
	b := newBundle(t, rt, ta.Addr(), "while :; do usleep 100000; done")
	id := nextID("exec")
	// Output goes to files, not pipes: the detached container inherits
	// runc run's descriptors and would hold a pipe open, so Run would wait
	// for it forever.
	outDir := t.TempDir()
	runc := func(args ...string) (string, string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, rt.path, append([]string{"--root", b.root}, args...)...)
		var files [2]*os.File
		for i, name := range []string{"stdout", "stderr"} {
			f, err := os.Create(filepath.Join(outDir, name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			files[i] = f
		}
		cmd.Stdout, cmd.Stderr = files[0], files[1]
		err := cmd.Run()
		o, _ := os.ReadFile(files[0].Name())
		e, _ := os.ReadFile(files[1].Name())
		return string(o), string(e), err
	}
	if _, stderr, err := runc("run", "-d", "--bundle", b.dir, id); err != nil {
		t.Fatalf("runc run -d: %v\n%s\nagent:\n%s", err, stderr, ta.Log)
	}
	t.Cleanup(func() {
		if _, stderr, err := runc("delete", "-f", id); err != nil {
			t.Errorf("runc delete -f: %v\n%s", err, stderr)
		}
	})
	if stdout, stderr, err := runc("exec", id, "cat", "/etc/ok"); err != nil || stdout != "ok\n" {
		t.Fatalf("runc exec cat /etc/ok: %q, %v\n%s\nagent:\n%s", stdout, err, stderr, ta.Log)
	}
	stdout, stderr, err := runc("exec", id, "cat", "/etc/secret")
	if err == nil || strings.Contains(stdout, "the secret") || !strings.Contains(stderr, "can't open '/etc/secret': Permission denied") {
		t.Fatalf("runc exec cat /etc/secret: %q, %v\n%s", stdout, err, stderr)
	}
	for _, want := range []recordWant{
		{Syscall: "openat", Action: "allow", Arg: "/etc/ok", Verified: audit.VerifiedKernel},
		{Syscall: "openat", Rule: "no-secret", Action: "deny", Errno: "EACCES", Arg: "/etc/secret"},
	} {
		if r := ta.Audit.waitRecord(t, auditOf(id, want)); r.Comm != "cat" {
			t.Errorf("the record of %s says comm %q, want cat (the program runc's init exec'd)", r.Args.Path, r.Comm)
		}
	}
}

// TestAMovedMountKeepsItsProtectedNames gives a container the capability
// to mount and the protected file on a mount of its own (/etc, bound from
// the host), then has it move that mount elsewhere and read the file there.
// Path rules name objects in the container's view at its handoff, so the
// file is still /etc/secret and refused: the profile sends the calls that
// move and create mounts to the agent.
func TestAMovedMountKeepsItsProtectedNames(t *testing.T) {
	for _, name := range []string{"runc", "crun"} {
		t.Run(name, func(t *testing.T) {
			rt := requireRuntime(t, name)
			ta := startAgent(t, DefaultHandoffTimeout)
			webPolicyFile(t, ta.Dir)
			etc := t.TempDir()
			for file, content := range map[string]string{"ok": "ok\n", "secret": "the secret\n"} {
				if err := os.WriteFile(filepath.Join(etc, file), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			script := `cat /etc/secret; echo "before=$?"
/bin/busybox mkdir /tmp/moved && /bin/busybox mount --move /etc /tmp/moved; echo "move=$?"
cat /tmp/moved/ok
cat /tmp/moved/secret; echo "after=$?"
`
			b := makeBundle(t, rt, ta.Addr(), func(spec *specs.Spec) {
				spec.Process.Args = []string{"sh", "-c", script}
				spec.Mounts = append(spec.Mounts,
					specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
					specs.Mount{Destination: "/etc", Type: "bind", Source: etc, Options: []string{"rbind", "ro"}})
				c := spec.Process.Capabilities
				c.Bounding = append(c.Bounding, "CAP_SYS_ADMIN")
				c.Effective = append(c.Effective, "CAP_SYS_ADMIN")
				c.Permitted = append(c.Permitted, "CAP_SYS_ADMIN")
			})
			id := nextID("moved")
			stdout, stderr, err := b.run(t, id, "")
			if err != nil {
				t.Fatalf("%s run: %v\nstdout:\n%s\nstderr:\n%s\nagent:\n%s", name, err, stdout, stderr, ta.Log)
			}
			for _, want := range []string{"before=1\n", "move=0\n", "ok\n", "after=1\n"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s\nstderr:\n%s", want, stdout, stderr)
				}
			}
			if strings.Contains(stdout, "the secret") {
				t.Errorf("the container read the protected file after moving its mount:\n%s", stdout)
			}
			ta.Audit.waitRecord(t, auditOf(id, recordWant{Syscall: "openat", Rule: "no-secret", Action: "deny", Errno: "EACCES", Arg: "/tmp/moved/secret"}))
		})
	}
}

// specScript is what the README's container runs: one allowed and one
// denied open.
const specScript = "cat /etc/ok\ncat /etc/secret; echo \"secret=$?\"\n"

// TestSpecContainerStartsFiftyTimesInRow starts the README's container
// (runc spec, terminal false, the generated profile) fifty times in a row
// under `vigil agent` in its default mode. web.yaml has path rules on the
// open family, so every open after the handoff is decided by the agent:
// runc init's own (its exec FIFO, /proc/self/fd/N, O_WRONLY) included.
func TestSpecContainerStartsFiftyTimesInRow(t *testing.T) {
	for _, name := range []string{"runc", "crun"} {
		t.Run(name, func(t *testing.T) {
			rt := requireRuntime(t, name)
			ta := startAgent(t, DefaultHandoffTimeout)
			webPolicyFile(t, ta.Dir)
			b := newSpecBundle(t, rt, ta.Addr())
			const runs = 50
			start := time.Now()
			for i := 1; i <= runs; i++ {
				id := nextID("spec")
				stdout, stderr, err := b.run(t, id, specScript)
				if err != nil || stdout != "ok\nsecret=1\n" || !strings.Contains(stderr, "can't open '/etc/secret': Permission denied") {
					t.Fatalf("run %d of %d: %v\nstdout:\n%s\nstderr:\n%s\nagent:\n%s\naudit:\n%s", i, runs, err, stdout, stderr, ta.Log, ta.Audit)
				}
				ta.Audit.waitRecord(t, auditOf(id, recordWant{Syscall: "openat", Rule: "no-secret", Action: "deny", Errno: "EACCES", Arg: "/etc/secret"}))
				if name == "runc" {
					// runc init opened its exec FIFO through the agent,
					// and the agent let it.
					ta.Audit.waitRecord(t, auditOf(id, recordWant{Comm: "runc:[2:INIT]", Syscall: "openat", Arg: "/proc/self/fd/", Action: "allow"}))
				}
			}
			t.Logf("%d %s containers in %v", runs, name, time.Since(start).Round(time.Millisecond))
			if n := ta.Log.count(map[string]string{"level": "error"}); n != 0 {
				t.Fatalf("%d error lines from the agent:\n%s", n, ta.Log)
			}
		})
	}
}

// agentProc is `vigil agent` (Main) in a child process.
type agentProc struct {
	cmd    *exec.Cmd
	stderr *logBuf
	done   chan struct{}
}

// startAgentProc starts the agent on sock with policy directory dir and
// audit log file auditLog; env adds variables (NOTIFY_SOCKET).
func startAgentProc(t *testing.T, sock, dir, auditLog string, env ...string) *agentProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(append(os.Environ(), helperEnv+"=agent", envSocket+"="+sock, envDir+"="+dir, envAudit+"="+auditLog), env...)
	p := &agentProc{cmd: cmd, stderr: &logBuf{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	return p
}

// waitListening waits for the agent's "listening" line.
func (p *agentProc) waitListening(t *testing.T) {
	t.Helper()
	if !settle(func() bool { return strings.Contains(p.stderr.String(), "agent listening") }) {
		t.Fatalf("agent did not start:\n%s", p.stderr)
	}
}

// exitCode waits for the agent to exit and returns its status.
func (p *agentProc) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("agent still running:\n%s", p.stderr)
	}
	return p.cmd.ProcessState.ExitCode()
}

func TestKilledAgentFailsTrappedCallsAndItsStaleSocketIsReplaced(t *testing.T) {
	rt := requireRuntime(t, "runc")
	base := t.TempDir()
	dir := filepath.Join(base, "policies")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	webPolicyFile(t, dir)
	sock := filepath.Join(base, "agent.sock")
	first := startAgentProc(t, sock, dir, filepath.Join(base, "audit.log"))
	first.waitListening(t)

	// A second agent on a live agent's socket refuses to start and leaves
	// the socket alone.
	second := startAgentProc(t, sock, dir, filepath.Join(base, "audit2.log"))
	if code := second.exitCode(t); code != 2 || !strings.Contains(second.stderr.String(), "another agent is running") {
		t.Fatalf("second agent on a live socket: exit %d\n%s", code, second.stderr)
	}

	// Every `cat` opens /etc/ok through the agent; once the agent is gone
	// the open fails with ENOSYS, cat fails and the loop ends.
	b := newBundle(t, rt, sock, `while cat /etc/ok; do usleep 50000; done; echo loop-ended`)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := b.command(ctx, nextID("kill"))
	var stdout, stderr testenv.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if !settle(func() bool { return strings.Count(stdout.String(), "ok\n") >= 3 }) {
		t.Fatalf("container did not get going:\nstdout:\n%s\nstderr:\n%s\nagent:\n%s", stdout.String(), stderr.String(), first.stderr)
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("runc run: %v\nstderr:\n%s", err, stderr.String())
		}
	case <-ctx.Done():
		t.Fatalf("container still running after its agent was killed (a trapped call hangs?):\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "can't open '/etc/ok': Function not implemented") {
		t.Fatalf("cat did not fail with ENOSYS:\n%s", stderr.String())
	}
	if !strings.Contains(stdout.String(), "loop-ended") {
		t.Fatalf("the loop did not end:\n%s", stdout.String())
	}

	// The killed agent left its socket behind; a new agent replaces it and
	// containers start again.
	if st, err := os.Lstat(sock); err != nil || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("the killed agent's socket: %v", err)
	}
	third := startAgentProc(t, sock, dir, filepath.Join(base, "audit3.log"))
	third.waitListening(t)
	spec := newSpecBundle(t, rt, sock)
	if out, errOut, err := spec.run(t, nextID("restarted"), specScript); err != nil || out != "ok\nsecret=1\n" {
		t.Fatalf("container under the restarted agent: %v\nstdout:\n%s\nstderr:\n%s\nagent:\n%s", err, out, errOut, third.stderr)
	}
}

func TestTwoHundredContainersLeaveNoFdsGoroutinesOrWorkers(t *testing.T) {
	rt := requireRuntime(t, "runc")
	ta := startAgent(t, DefaultHandoffTimeout)
	webPolicyFile(t, ta.Dir)
	// The FIFO is created by emulation (web.yaml's dev rule makes mknod
	// content-dependent), so every container starts an emulation worker in
	// its namespaces.
	b := newBundle(t, rt, ta.Addr(), "cat /etc/ok; mknod /tmp/fifo p")
	runOne := func(i int) {
		t.Helper()
		id := nextID("many")
		stdout, stderr, err := b.run(t, id, "")
		if err != nil || stdout != "ok\n" {
			t.Fatalf("container %d: %v\nstdout:\n%s\nstderr:\n%s", i, err, stdout, stderr)
		}
	}
	// Idle means no container supervised and no handoff connection open:
	// a connection's goroutine drains it until the runtime exits, which
	// can be a moment after the container's last process.
	idle := func() bool { return len(ta.Containers()) == 0 && ta.openConnections() == 0 }
	// One run first: whatever the runtime and the agent create once (the
	// poller, timers, the flusher) belongs to the baseline.
	runOne(0)
	if !settle(idle) {
		t.Fatal("the warm-up container is still supervised")
	}
	baseFds, baseG := countFds(t), runtime.NumGoroutine()
	const n = 200
	start := time.Now()
	for i := 1; i <= n; i++ {
		runOne(i)
	}
	elapsed := time.Since(start)
	if !settle(idle) {
		t.Fatalf("%d containers still supervised", len(ta.Containers()))
	}
	// A released container's goroutines end right after its log line;
	// allow the runtime a couple of its own (timers, GC workers). A leak of
	// one per container shows as growth; fewer than the baseline only means
	// the baseline caught something transient.
	const slack = 2
	fds, g := 0, 0
	ok := settle(func() bool {
		fds, g = countFds(t), runtime.NumGoroutine()
		return fds <= baseFds && g <= baseG+slack
	})
	t.Logf("%d containers in %v (%v each); fds %d -> %d, goroutines %d -> %d",
		n, elapsed.Round(time.Millisecond), (elapsed / n).Round(time.Millisecond), baseFds, fds, baseG, g)
	if !ok {
		buf := make([]byte, 1<<20)
		t.Fatalf("fds %d (baseline %d), goroutines %d (baseline %d, slack %d)\n%s",
			fds, baseFds, g, baseG, slack, buf[:runtime.Stack(buf, true)])
	}
	if got := ta.Log.count(map[string]string{"message": "container released"}); got != n+1 {
		t.Fatalf("%d containers released, want %d", got, n+1)
	}
	emulated := recordWant{Syscall: "mknodat", Emulated: true}
	if !settle(func() bool { return ta.Audit.countRecords(t, emulated) == n+1 }) {
		t.Fatalf("%d emulated mknods, want %d", ta.Audit.countRecords(t, emulated), n+1)
	}
	// A worker joins its container's namespaces and pins them: none may
	// outlive its container.
	var workers []string
	if !settle(func() bool { workers = emulationWorkers(t); return len(workers) == 0 }) {
		t.Fatalf("%d emulation workers outlived their containers: %v", len(workers), workers)
	}
}

// emulationWorkers lists this process's children that are emulation
// workers ("vigil:emulate").
func emulationWorkers(t *testing.T) []string {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "children"))
		if err != nil {
			continue
		}
		for _, pid := range strings.Fields(string(b)) {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
			if strings.HasPrefix(string(cmdline), "vigil:emulate") {
				out = append(out, pid)
			}
		}
	}
	return out
}

// TestContainerForksRunUntrappedUnderANamespaceRule: a container policy that
// denies CLONE_NEWUSER on clone sends the agent only the clones carrying that
// flag (seccomp-profile's conditional rules): the shell's forks run natively,
// with no notification and no record, where before every fork was trapped
// and bound.
func TestContainerForksRunUntrappedUnderANamespaceRule(t *testing.T) {
	rt := requireRuntime(t, "runc")
	ta := startAgent(t, DefaultHandoffTimeout)
	const ns = "version: 1\nrules:\n  - name: no-userns\n    syscalls: [clone, clone3]\n    match: { flags: { any: [CLONE_NEWUSER] } }\n    action: deny\n" +
		"  - name: no-secret\n    syscalls: [openat]\n    match: { path: [\"/etc/secret\"] }\n    action: deny\n"
	pol, err := policy.Parse("ns.yaml", []byte(ns))
	if err != nil {
		t.Fatal(err)
	}
	writePolicy(t, ta.Dir, "ns.yaml", ns)
	prof, err := Profile(pol, ProfileOptions{Socket: ta.Addr(), Metadata: "policy=ns.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	script := `for i in 1 2 3; do echo "fork $(echo $i)"; done
cat /etc/ok; cat /etc/secret; echo "secret=$?"`
	b := makeBundle(t, rt, ta.Addr(), func(spec *specs.Spec) {
		spec.Process.Args = []string{"sh", "-c", script}
		spec.Linux.Seccomp = prof
	})
	id := nextID("forks")
	stdout, stderr, err := b.run(t, id, "")
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s\nagent:\n%s", err, stdout, stderr, ta.Log)
	}
	if want := "fork 1\nfork 2\nfork 3\nok\nsecret=1\n"; stdout != want {
		t.Errorf("stdout %q, want %q\nstderr:\n%s", stdout, want, stderr)
	}
	// The policy is in force: the secret's denial is recorded.
	ta.Audit.waitRecord(t, recordWant{Container: id, Syscall: "openat", Rule: "no-secret", Action: "deny"})
	ta.Log.waitLine(t, map[string]string{"message": "container released", audit.FieldContainer: id})
	for _, r := range ta.Audit.records(t) {
		if r.Container == id && r.Syscall == "clone" {
			t.Errorf("a clone without CLONE_NEWUSER reached the agent: %+v", r)
		}
	}
}
