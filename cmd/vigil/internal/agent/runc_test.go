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
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/rs/zerolog"

	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/testenv"
	"github.com/vigilsec/vigil/loader"
)

// requireRunc skips (or, under VIGIL_REQUIRE_PRIVILEGED=1, fails) without
// root, runc and a static busybox, and returns their paths.
func requireRunc(t *testing.T) (runc, busybox string) {
	t.Helper()
	testenv.RequirePrivileged(t)
	reason := ""
	runc, err := exec.LookPath("runc")
	if err != nil {
		reason = "runc is not installed (scripts/deps.sh installs it)"
	}
	busybox, err = exec.LookPath("busybox")
	if err != nil {
		reason = "busybox is not installed (scripts/deps.sh installs busybox-static)"
	} else if !static(busybox) {
		reason = busybox + " is dynamically linked; install busybox-static"
	}
	if reason == "" {
		return runc, busybox
	}
	if os.Getenv("VIGIL_REQUIRE_PRIVILEGED") == "1" {
		t.Fatalf("runc test cannot run: %s (VIGIL_REQUIRE_PRIVILEGED=1)", reason)
	}
	t.Skip(reason)
	return "", ""
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
// /etc/secret, and whose seccomp profile is Profile(web.yaml) pointing at
// the agent's socket.
type bundle struct {
	dir, runc, root string
}

var containerSeq atomic.Int64

// newBundle builds a bundle running `sh -c script`.
func newBundle(t *testing.T, sock, script string) *bundle {
	t.Helper()
	runc, busybox := requireRunc(t)
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "etc", "tmp", "proc", "dev", "sys"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile(busybox)
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
	prof, err := Profile(pol, ProfileOptions{Socket: sock, Metadata: "policy=web.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	spec.Process.Terminal = false
	spec.Process.Args = []string{"sh", "-c", script}
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}})
	spec.Linux.Seccomp = prof
	out, err := json.MarshalIndent(&spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, out, 0o644); err != nil {
		t.Fatal(err)
	}
	// runc's state (and the exec FIFO) live in a root of the test's own, so
	// nothing collides with other runc users on the machine.
	return &bundle{dir: dir, runc: runc, root: t.TempDir()}
}

// nextID returns a container id unique on this machine for this run: runc
// also names cgroups after it.
func nextID(prefix string) string {
	return fmt.Sprintf("vigil-%s-%d-%d", prefix, os.Getpid(), containerSeq.Add(1))
}

// command returns `runc run` of the bundle as container id.
func (b *bundle) command(ctx context.Context, id string) *exec.Cmd {
	return exec.CommandContext(ctx, b.runc, "--root", b.root, "run", "--bundle", b.dir, id)
}

// run runs the container to completion.
func (b *bundle) run(t *testing.T, id string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := b.command(ctx, id)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func TestRuncContainerFollowsItsPolicy(t *testing.T) {
	requireRunc(t)
	ta := startAgent(t, DefaultHandoffTimeout)
	web, err := os.ReadFile("testdata/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	writePolicy(t, ta.Dir, "web.yaml", string(web))
	script := `cat /etc/ok
cat /etc/secret; echo "secret=$?"
mknod /tmp/fifo p && echo fifo=ok
mknod /tmp/mem c 1 1; echo "mem=$?"
nc 127.0.0.1 9 </dev/null; echo "nc-denied=$?"
nc 127.0.0.2 80 </dev/null; echo "nc-allowed=$?"
`
	b := newBundle(t, ta.Addr(), script)
	id := nextID("policy")
	stdout, stderr, err := b.run(t, id)
	if err != nil {
		t.Fatalf("runc run: %v\nstdout:\n%s\nstderr:\n%s\nagent:\n%s", err, stdout, stderr, ta.Log)
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
		FieldListenerMetadata: "policy=web.yaml", FieldPolicy: "web.yaml", FieldOCIVersion: "1."})
	ta.Log.waitLine(t, map[string]string{"message": "container released", audit.FieldContainer: id})
	meta := map[string]string{audit.FieldContainer: id, FieldListenerMetadata: "policy=web.yaml"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range meta {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	ta.Audit.waitLine(t, with(audit.FieldSyscall, "openat", audit.FieldRule, "no-secret", audit.FieldAction, "deny", audit.FieldErrno, "EACCES", audit.FieldArgs, "/etc/secret"))
	ta.Audit.waitLine(t, with(audit.FieldRule, "no-mem-devices", audit.FieldAction, "deny", audit.FieldArgs, "c 1:1"))
	ta.Audit.waitLine(t, with(audit.FieldSyscall, "connect", audit.FieldRule, "no-metadata-service", audit.FieldAction, "deny", audit.FieldArgs, "127.0.0.1:9"))
	ta.Audit.waitLine(t, with(audit.FieldSyscall, "connect", audit.FieldRule, "connections", audit.FieldAction, "log", audit.FieldArgs, "127.0.0.2:80"))
	ta.Audit.waitLine(t, with(audit.FieldSyscall, "openat", audit.FieldAction, "allow", audit.FieldArgs, "/etc/ok"))
}

// syncBuf is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestKilledAgentFailsTrappedCallsWithENOSYS(t *testing.T) {
	requireRunc(t)
	base := t.TempDir()
	dir := filepath.Join(base, "policies")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	web, err := os.ReadFile("testdata/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	writePolicy(t, dir, "web.yaml", string(web))
	sock := filepath.Join(base, "agent.sock")

	// The agent runs in a process of its own, so it can be SIGKILLed.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	agentCmd := exec.Command(exe)
	agentCmd.Env = append(os.Environ(), helperEnv+"=agent", envSocket+"="+sock, envDir+"="+dir, envAudit+"="+filepath.Join(base, "audit.log"))
	var agentErr syncBuf
	agentCmd.Stderr = &agentErr
	if err := agentCmd.Start(); err != nil {
		t.Fatal(err)
	}
	agentDone := make(chan struct{})
	go func() { agentCmd.Wait(); close(agentDone) }()
	t.Cleanup(func() {
		agentCmd.Process.Kill()
		<-agentDone
	})
	if !settle(func() bool { return strings.Contains(agentErr.String(), "agent listening") }) {
		t.Fatalf("agent did not start:\n%s", agentErr.String())
	}

	// Every `cat` opens /etc/ok through the agent; once the agent is gone
	// the open fails with ENOSYS, cat fails and the loop ends.
	b := newBundle(t, sock, `while cat /etc/ok; do usleep 50000; done; echo loop-ended`)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := b.command(ctx, nextID("kill"))
	var stdout, stderr syncBuf
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if !settle(func() bool { return strings.Count(stdout.String(), "ok\n") >= 3 }) {
		t.Fatalf("container did not get going:\nstdout:\n%s\nstderr:\n%s\nagent:\n%s", stdout.String(), stderr.String(), agentErr.String())
	}
	if err := agentCmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-agentDone
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
}

func TestTwoHundredContainersLeaveNoFdsOrGoroutines(t *testing.T) {
	requireRunc(t)
	ta := startAgent(t, DefaultHandoffTimeout)
	web, err := os.ReadFile("testdata/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	writePolicy(t, ta.Dir, "web.yaml", string(web))
	b := newBundle(t, ta.Addr(), "cat /etc/ok")
	runOne := func(i int) {
		t.Helper()
		id := nextID("many")
		stdout, stderr, err := b.run(t, id)
		if err != nil || stdout != "ok\n" {
			t.Fatalf("container %d: %v\nstdout:\n%s\nstderr:\n%s", i, err, stdout, stderr)
		}
	}
	idle := func() bool { return len(ta.Containers()) == 0 }
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
	// allow the runtime a couple of its own (timers, GC workers).
	const slack = 2
	fds, g := 0, 0
	ok := settle(func() bool {
		fds, g = countFds(t), runtime.NumGoroutine()
		return fds == baseFds && g <= baseG+slack
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
}

func TestRuncGrantsAreBoundInTheKernel(t *testing.T) {
	requireRunc(t)
	var kernelLog logBuf
	ld, err := loader.Load(loader.Options{Log: zerolog.New(&kernelLog)})
	if err != nil {
		t.Fatalf("loading the eBPF binding: %v", err)
	}
	kern := enforcer.NewKernel(ld, zerolog.New(&kernelLog))
	// Registered first, so it runs after the agent's cleanup.
	t.Cleanup(func() { kern.Close() })
	ta := startAgent(t, DefaultHandoffTimeout, kern)
	web, err := os.ReadFile("testdata/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	writePolicy(t, ta.Dir, "web.yaml", string(web))
	b := newBundle(t, ta.Addr(), "cat /etc/ok; cat /etc/secret")
	id := nextID("bound")
	stdout, stderr, _ := b.run(t, id)
	if stdout != "ok\n" || !strings.Contains(stderr, "can't open '/etc/secret': Permission denied") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s\nagent:\n%s", stdout, stderr, ta.Log)
	}
	// The container's processes were watched from the handoff on, so the
	// allowed open was bound and the kernel's object confirmed it.
	ta.Audit.waitLine(t, map[string]string{audit.FieldContainer: id, FieldListenerMetadata: "policy=web.yaml",
		audit.FieldSyscall: "openat", audit.FieldArgs: "/etc/ok", audit.FieldAction: "allow", audit.FieldVerified: audit.VerifiedKernel})
}
