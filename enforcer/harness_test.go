package enforcer_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/launch"
	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/reexec"
	"github.com/vigilsec/vigil/enforcer/testenv"
	"github.com/vigilsec/vigil/loader"
)

func TestMain(m *testing.M) {
	reexec.Run(launch.InitRole(), emulate.WorkerRole())
	if h := os.Getenv("VIGIL_TEST_HELPER"); h != "" {
		os.Exit(runHelper(h, os.Args[1:]))
	}
	code := m.Run()
	if sharedEmulator != nil {
		_ = sharedEmulator.Close()
	}
	if sharedKernel != nil {
		if err := sharedKernel.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "closing eBPF binding: %v\n", err)
		}
	}
	os.Exit(code)
}

var (
	kernelOnce   sync.Once
	sharedKernel *enforcer.Kernel
	kernelErr    error
	kernelAudit  syncBuffer
)

// testKernel loads the eBPF binding once per test binary; supervised runs
// bind their grants through it unless they ask for the naive mode.
func testKernel(t testing.TB) *enforcer.Kernel {
	t.Helper()
	kernelOnce.Do(func() {
		ld, err := loader.Load(loader.Options{Log: zerolog.New(&kernelAudit), DetachIdle: loader.DefaultDetachIdle})
		if err != nil {
			kernelErr = err
			return
		}
		sharedKernel = enforcer.NewKernel(ld, zerolog.New(&kernelAudit))
	})
	if kernelErr != nil {
		t.Fatalf("loading the eBPF binding: %v", kernelErr)
	}
	return sharedKernel
}

var (
	emulatorOnce   sync.Once
	sharedEmulator *emulate.Emulator
	emulatorErr    error
)

// testEmulator starts the emulation engine once per test binary.
func testEmulator(t testing.TB) *emulate.Emulator {
	t.Helper()
	emulatorOnce.Do(func() {
		sharedEmulator, emulatorErr = emulate.New(zerolog.New(&kernelAudit))
	})
	if emulatorErr != nil {
		t.Fatalf("starting the emulation engine: %v", emulatorErr)
	}
	return sharedEmulator
}

// inUserNS starts the watchee as root of a new user namespace mapped to
// host ids 100000-165535, as `vigil run --userns` does.
func inUserNS() runOpt {
	return func(c *enforcer.RunConfig) { c.SysProcAttr = enforcer.UserNSAttr(enforcer.DefaultUserNSRange) }
}

// naive runs the watchee without the eBPF binding: content-dependent allows
// CONTINUE unbound, which the race tests must beat.
func naive() runOpt {
	return func(c *enforcer.RunConfig) { c.Kernel, c.Emulator, c.Unverified = nil, nil, true }
}

// syncBuffer collects audit records from the notify loop thread.
type syncBuffer struct{ testenv.Buffer }

func (s *syncBuffer) records(t testing.TB) []audit.Record {
	out, err := audit.ReadRecords(bytes.NewReader(s.Bytes()))
	if err != nil {
		t.Fatalf("audit records: %v", err)
	}
	return out
}

type result struct {
	stdout  string
	code    int
	records []audit.Record
	stats   enforcer.Stats
}

// find returns the audit records for syscall whose args.path equals path
// (any path when path is "").
func (r result) find(syscall, path string) []audit.Record {
	var out []audit.Record
	for _, m := range r.records {
		if m.Syscall != syscall {
			continue
		}
		if path != "" && m.Args.Path != path {
			continue
		}
		out = append(out, m)
	}
	return out
}

type runOpt func(*enforcer.RunConfig)

func withBeforeAnswer(f func(n *notify.Notif, path string)) runOpt {
	return func(c *enforcer.RunConfig) { c.BeforeAnswer = f }
}

// withAuditTo sends audit records through a buffered sink to w (as
// `--log FILE` does) instead of collecting them.
func withAuditTo(w io.Writer) runOpt {
	return func(c *enforcer.RunConfig) {
		c.Audit = audit.NewLogger(audit.NewSink(w), auditBenchLevel)
	}
}

func mustPolicy(t testing.TB, yaml string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	return p
}

// supervise runs argv under vigil with the given policy and returns what the
// watchee printed, its exit code and the audit records.
func supervise(t testing.TB, pol *policy.Policy, argv []string, opts ...runOpt) result {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var auditBuf syncBuffer
	var sup *enforcer.Supervisor
	cfg := enforcer.RunConfig{
		Config: enforcer.Config{
			Kernel:   testKernel(t),
			Emulator: testEmulator(t),
			Policy:   pol,
			Log:      zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel),
			Audit:    audit.NewLogger(&auditBuf, zerolog.DebugLevel),
		},
		Args:    argv,
		Env:     os.Environ(),
		Stdout:  out,
		Stderr:  os.Stderr,
		OnServe: func(s *enforcer.Supervisor) { sup = s },
	}
	for _, o := range opts {
		o(&cfg)
	}
	type ret struct {
		code int
		err  error
	}
	done := make(chan ret, 1)
	go func() {
		ex, err := enforcer.Run(cfg)
		done <- ret{ex.Code, err}
	}()
	var r ret
	select {
	case r = <-done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("vigil run %v did not finish (deadlock?)\n%s", argv, hangReport(argv[0]))
	}
	if r.err != nil {
		t.Fatalf("vigil run %v: %v", argv, r.err)
	}
	if cfg.Kernel != nil {
		// Bound decisions are recorded when their kernel event arrives.
		cfg.Kernel.Settle()
	}
	b, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	res := result{stdout: string(b), code: r.code, records: auditBuf.records(t)}
	if sup != nil {
		res.stats = sup.Stats()
	}
	return res
}

// bare runs argv without supervision. Its exit code is 128+signal when a
// signal killed it, as supervise reports (and a shell would), so the two
// compare directly.
func bare(t testing.TB, argv ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%v: %v", argv, err)
		}
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	}
	return string(out), code
}

func lines(s string) []string {
	return strings.Split(strings.TrimSpace(s), "\n")
}

// auditBenchLevel is the audit level benchmarks record at: debug records
// every decision, as `vigil run --log FILE` does.
var auditBenchLevel = zerolog.DebugLevel

// hangReport says where a run that did not finish is stuck: the kernel
// stacks of the watchee's threads (processes running exe) and every
// goroutine of this process, vigil's receivers among them.
func hangReport(exe string) string {
	var b strings.Builder
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if target, err := os.Readlink("/proc/" + p.Name() + "/exe"); err != nil || target != exe {
			continue
		}
		if pid, err := strconv.Atoi(p.Name()); err == nil {
			b.WriteString("watchee " + testenv.ThreadStacks(pid))
		}
	}
	buf := make([]byte, 1<<20)
	b.Write(buf[:runtime.Stack(buf, true)])
	return b.String()
}

// pythonAsBare runs the python script with a fresh directory as its only
// argument, once bare and once under pol, and fails on any difference in
// output or exit status; it returns the bare output and vigil's result.
// dirMode, if not 0, is given to both directories first.
func pythonAsBare(t *testing.T, pol *policy.Policy, what, script string, dirMode os.FileMode) (string, result) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatalf("python3: %v", err)
	}
	bareDir, vigilDir := t.TempDir(), t.TempDir()
	for _, d := range []string{bareDir, vigilDir} {
		if dirMode == 0 {
			break
		}
		if err := os.Chmod(d, dirMode); err != nil {
			t.Fatal(err)
		}
	}
	want, wantCode := bare(t, "python3", "-c", script, bareDir)
	r := supervise(t, pol, []string{"python3", "-c", script, vigilDir})
	if r.stdout != want || r.code != wantCode {
		t.Fatalf("%s differ under vigil (exit %d, bare %d)\nvigil:\n%s\nbare:\n%s", what, r.code, wantCode, r.stdout, want)
	}
	return want, r
}

// performed counts the records keep selects that vigil performed, and
// fails on any of them continued unverified.
func performed(t *testing.T, recs []audit.Record, keep func(*audit.Record) bool) int {
	t.Helper()
	n := 0
	for i := range recs {
		m := &recs[i]
		if !keep(m) {
			continue
		}
		if m.Verified == audit.VerifiedNone {
			t.Errorf("%s continued unverified: %+v", m.Syscall, *m)
		}
		if m.Emulated {
			n++
		}
	}
	return n
}
