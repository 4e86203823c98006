package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/testenv"
	"github.com/vigilsec/vigil/loader"
)

// TestMetricsMatchTheAuditRecords scrapes --metrics-addr while `vigil run`
// supervises a shell in the default secure mode, and checks that
// vigil_decisions_total counts exactly the audit records written so far, by
// syscall, action, rule, verified and emulated.
func TestMetricsMatchTheAuditRecords(t *testing.T) {
	testenv.RequirePrivileged(t)
	dir := t.TempDir()
	okFile, secret, mk := filepath.Join(dir, "ok"), filepath.Join(dir, "secret"), filepath.Join(dir, "mk")
	for _, f := range []string{okFile, secret} {
		if err := os.WriteFile(f, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(mk, 0o755); err != nil {
		t.Fatal(err)
	}
	pol := writeFile(t, "p.yaml", fmt.Sprintf(`version: 1
rules:
  - name: no-secret
    syscalls: [open, openat]
    match: { path: [%q] }
    action: deny
    errno: EACCES
  - name: no-denied-dir
    syscalls: [mkdir, mkdirat]
    match: { path: [%q] }
    action: deny
`, secret, filepath.Join(mk, "denied")))
	logFile := filepath.Join(dir, "audit.log")
	// After "ready" the shell only reads stdin and exits: no trapped call
	// runs between the scrape and the end of the run.
	script := fmt.Sprintf(`cat %[1]s >/dev/null; cat %[2]s 2>/dev/null; mkdir %[3]s/a; mkdir %[3]s/denied 2>/dev/null; echo ready; read x; exit 0`, okFile, secret, mk)
	cmd := exec.Command(vigilBin, "run", "--policy", pol, "--log", logFile, "--metrics-addr", "127.0.0.1:0", "--", "sh", "-c", script)
	start := time.Now()
	stdin, stdout, stderr := startPiped(t, cmd)
	done := make(chan struct{})
	var waitErr error
	defer func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
		}
	}()
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
		io.Copy(io.Discard, stdout)
		waitErr = cmd.Wait()
		close(done)
	}()
	select {
	case line := <-ready:
		if line != "ready\n" {
			t.Fatalf("watchee said %q; stderr:\n%s\nlog:\n%s", line, stderr.String(), readLog(logFile))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("watchee not ready; stderr:\n%s", stderr.String())
	}

	t.Logf("watchee ready after %v", time.Since(start))
	addr := metricsAddrFromLog(t, logFile)
	// The counters must see what the script did, with the kernel
	// confirming the allowed open and emulation carrying out the mkdir.
	wants := []string{
		"openat|deny|no-secret||false",
		"openat|allow|default|kernel|false",
		"mkdir|deny|no-denied-dir||false",
		"mkdir|allow|default||true",
	}
	seenAll := func(m map[string]float64) bool {
		for _, w := range wants {
			if m[w] < 1 {
				return false
			}
		}
		return true
	}
	// Records of bound grants are written when the kernel's event arrives
	// (the event reader may be woken late on a loaded machine), and the log
	// is flushed every 100ms: wait until both sides agree on everything,
	// since they also agree while the bound open's record is still pending.
	var fromAudit, fromMetrics map[string]float64
	deadline := time.Now().Add(15 * time.Second)
	for {
		fromMetrics = scrapeDecisions(t, addr)
		fromAudit = countRecords(t, logFile)
		if equalCounts(fromAudit, fromMetrics) && seenAll(fromMetrics) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("counts agree after %v", time.Since(start))
	if !equalCounts(fromAudit, fromMetrics) {
		t.Fatalf("metrics differ from the audit records\naudit:\n%s\nmetrics:\n%s", dump(fromAudit), dump(fromMetrics))
	}
	for _, want := range wants {
		if fromMetrics[want] < 1 {
			t.Errorf("no decision %s in the metrics:\n%s", want, dump(fromMetrics))
		}
	}
	body := scrape(t, addr)
	for _, name := range []string{"vigil_decision_latency_seconds_bucket", "vigil_bindings_written_total", "vigil_kernel_events_lost_total", "vigil_build_info"} {
		if !strings.Contains(body, name) {
			t.Errorf("the scrape lacks %s", name)
		}
	}
	fams := parseMetrics(t, body)
	if n := counterValue(fams["vigil_bindings_written_total"]); n < fromMetrics["openat|allow|default|kernel|false"] {
		t.Errorf("%v bindings written for %v kernel-verified opens", n, fromMetrics["openat|allow|default|kernel|false"])
	}
	stdin.Close()
	select {
	case <-done:
		if waitErr != nil {
			t.Fatalf("vigil run: %v\nstderr:\n%s", waitErr, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("vigil run did not end")
	}
	if stderr.String() != "" {
		t.Errorf("with --log, vigil wrote to stderr:\n%s", stderr.String())
	}
}

// startPiped starts cmd with pipes to its stdin and from its stdout, and
// its stderr collected in a buffer that may be read while cmd runs.
func startPiped(t *testing.T, cmd *exec.Cmd) (io.WriteCloser, io.ReadCloser, *testenv.Buffer) {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := new(testenv.Buffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return stdin, stdout, stderr
}

func readLog(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// metricsAddrFromLog finds the "serving Prometheus metrics" line.
func metricsAddrFromLog(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(readLog(path), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["message"] == "serving Prometheus metrics" {
				return m["addr"].(string)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no metrics address in the log:\n%s", readLog(path))
	return ""
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %v %s", err, resp.Status)
	}
	return string(b)
}

func parseMetrics(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the scrape: %v\n%s", err, body)
	}
	return fams
}

func counterValue(f *dto.MetricFamily) float64 {
	if f == nil {
		return 0
	}
	sum := 0.0
	for _, m := range f.Metric {
		sum += m.GetCounter().GetValue()
	}
	return sum
}

// scrapeDecisions returns vigil_decisions_total keyed by
// syscall|action|rule|verified|emulated.
func scrapeDecisions(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	return decisionsOf(parseMetrics(t, scrape(t, addr)))
}

func decisionsOf(fams map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	f := fams["vigil_decisions_total"]
	if f == nil {
		return out
	}
	for _, m := range f.Metric {
		l := map[string]string{}
		for _, lp := range m.Label {
			l[lp.GetName()] = lp.GetValue()
		}
		out[strings.Join([]string{l["syscall"], l["action"], l["rule"], l["verified"], l["emulated"]}, "|")] += m.GetCounter().GetValue()
	}
	return out
}

// countRecords counts the complete audit records in the log by the same key.
func countRecords(t *testing.T, path string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	data := readLog(path)
	if i := strings.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i]
	} else {
		return out
	}
	for _, line := range strings.Split(data, "\n") {
		r, err := audit.ParseRecord([]byte(line))
		if errors.Is(err, audit.ErrNotRecord) {
			continue // vigil's own log lines
		}
		if err != nil {
			t.Fatalf("log line: %v", err)
		}
		out[strings.Join([]string{r.Syscall, r.Action, r.Rule, r.Verified, fmt.Sprint(r.Emulated)}, "|")]++
	}
	return out
}

func equalCounts(a, b map[string]float64) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func dump(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s %v\n", k, m[k])
	}
	return b.String()
}

// TestAgentMetricsCountRefusedHandoffs starts `vigil agent --metrics-addr`,
// sends it a malformed handoff and scrapes the refusal, then runs a runc
// container under it and scrapes the container and its decisions.
func TestAgentMetricsCountRefusedHandoffs(t *testing.T) {
	testenv.RequirePrivileged(t)
	dir := t.TempDir()
	sock, logFile := filepath.Join(dir, "agent.sock"), filepath.Join(dir, "agent.log")
	addr, errFile := startAgentWithMetrics(t, dir)
	// The agent's metrics exist from the moment its socket accepts.
	deadline := time.Now().Add(30 * time.Second)
	var c net.Conn
	for {
		var err error
		if c, err = net.Dial("unix", sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dialing the agent: %v\n%s", err, readLog(errFile))
		}
		time.Sleep(20 * time.Millisecond)
	}
	fams := parseMetrics(t, scrape(t, addr))
	if f := fams["vigil_agent_containers"]; f == nil || f.Metric[0].GetGauge().GetValue() != 0 {
		t.Fatalf("vigil_agent_containers: %v", f)
	}
	if _, err := c.Write([]byte("not a handoff")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	for {
		fams = parseMetrics(t, scrape(t, addr))
		if counterValue(fams["vigil_agent_handoffs_refused_total"]) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refused handoff counted:\n%s\nagent:\n%s", scrape(t, addr), readLog(errFile))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := counterValue(fams["vigil_agent_containers_supervised_total"]); v != 0 {
		t.Fatalf("%v containers supervised", v)
	}

	// One container, its profile made by seccomp-profile --config: it is
	// counted, and its decisions match the agent's audit records.
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatalf("runc is needed (scripts/deps.sh installs it): %v", err)
	}
	web, err := os.ReadFile("internal/agent/testdata/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "web.yaml"), web, 0o600); err != nil {
		t.Fatal(err)
	}
	bundle := busyboxBundle(t, runc, "cat /etc/secret; cat /etc/ok")
	cfgPath := filepath.Join(bundle, "config.json")
	merged, stderrOut, code := vigil(t, "agent", "seccomp-profile", "--policy", filepath.Join(dir, "web.yaml"), "--socket", sock, "--config", cfgPath)
	if code != 0 {
		t.Fatalf("seccomp-profile: exit %d: %s", code, stderrOut)
	}
	if err := os.WriteFile(cfgPath, []byte(merged), 0o644); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("vigil-metrics-%d", os.Getpid())
	out, err := exec.Command(runc, "--root", t.TempDir(), "run", "--bundle", bundle, id).CombinedOutput()
	if !strings.Contains(string(out), "can't open '/etc/secret': Permission denied") || !strings.Contains(string(out), "ok\n") {
		t.Fatalf("runc run: %v\n%s\nagent:\n%s", err, out, readLog(errFile))
	}
	deadline = time.Now().Add(15 * time.Second)
	var fromAudit, fromMetrics map[string]float64
	for {
		fams = parseMetrics(t, scrape(t, addr))
		fromMetrics, fromAudit = decisionsOf(fams), countRecords(t, logFile)
		if counterValue(fams["vigil_agent_containers_supervised_total"]) == 1 && equalCounts(fromAudit, fromMetrics) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("supervised %v\naudit:\n%s\nmetrics:\n%s", counterValue(fams["vigil_agent_containers_supervised_total"]), dump(fromAudit), dump(fromMetrics))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("agent decisions:\n%s", dump(fromMetrics))
	if fromMetrics["openat|deny|no-secret||false"] != 1 {
		t.Fatalf("the denial is not counted:\n%s", dump(fromMetrics))
	}
	// The agent's engine attaches its syscall tracepoints on demand too.
	if f := fams["vigil_syscall_tracepoints_attaches_total"]; f == nil || fams["vigil_syscall_tracepoints_attached"] == nil || counterValue(f) < 1 {
		t.Fatalf("the agent's scrape lacks the syscall tracepoint metrics (attaches %v)", f)
	}
}

// busyboxBundle makes an OCI bundle with `runc spec` and a static busybox
// (sh, cat, ls, wc) running sh -c script, with /etc/ok and /etc/secret,
// terminal false.
func busyboxBundle(t *testing.T, runc, script string) string {
	t.Helper()
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox-static is needed: %v", err)
	}
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "etc"} {
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
	for _, a := range []string{"sh", "cat", "ls", "wc"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", a)); err != nil {
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
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	proc := cfg["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"sh", "-c", script}
	raw, err = json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestMetricsFollowTheSyscallTracepoints: `vigil run --metrics-addr` shows
// whether its sys_enter and sys_exit programs are attached (the host-wide
// cost) and how often they were attached on demand: they go while the
// watchee idles past --detach-idle, and its next bound open brings them back.
func TestMetricsFollowTheSyscallTracepoints(t *testing.T) {
	testenv.RequirePrivileged(t)
	dir := t.TempDir()
	okFile, logFile := filepath.Join(dir, "ok"), filepath.Join(dir, "audit.log")
	if err := os.WriteFile(okFile, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pol := writeFile(t, "p.yaml", fmt.Sprintf(`version: 1
rules:
  - name: no-secret
    syscalls: [open, openat]
    match: { path: [%q] }
    action: deny
`, filepath.Join(dir, "secret")))
	script := fmt.Sprintf(`cat %[1]s >/dev/null; echo ready; read x; cat %[1]s >/dev/null; echo again; read x; exit 0`, okFile)
	cmd := exec.Command(vigilBin, "run", "--policy", pol, "--log", logFile, "--metrics-addr", "127.0.0.1:0",
		"--detach-idle", "100ms", "--", "sh", "-c", script)
	stdin, stdout, stderr := startPiped(t, cmd)
	defer func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	}()
	lines := make(chan string, 2)
	go func() {
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				close(lines)
				return
			}
			lines <- line
		}
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case line := <-lines:
			if line != want+"\n" {
				t.Fatalf("watchee said %q, want %q; stderr:\n%s", line, want, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("watchee did not say %q; stderr:\n%s", want, stderr.String())
		}
	}
	expect("ready")
	addr := metricsAddrFromLog(t, logFile)
	state := func() (attached, attaches float64) {
		fams := parseMetrics(t, scrape(t, addr))
		a, n := fams["vigil_syscall_tracepoints_attached"], fams["vigil_syscall_tracepoints_attaches_total"]
		if a == nil || n == nil || len(a.Metric) != 1 || len(n.Metric) != 1 {
			t.Fatalf("the scrape lacks the syscall tracepoint metrics: %v, %v", a, n)
		}
		return a.Metric[0].GetGauge().GetValue(), n.Metric[0].GetCounter().GetValue()
	}
	waitDetached := func() float64 {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			attached, attaches := state()
			if attached == 0 {
				return attaches
			}
			if time.Now().After(deadline) {
				t.Fatalf("the syscall tracepoints are still attached while the watchee idles (attaches %v)", attaches)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	before := waitDetached()
	if before < 1 {
		t.Errorf("attaches_total %v after the watchee's first bound calls, want at least 1", before)
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	expect("again")
	if after := waitDetached(); after <= before {
		t.Errorf("attaches_total %v after another bound open past --detach-idle, want more than %v", after, before)
	}
}

// startAgentWithMetrics starts `vigil agent --metrics-addr 127.0.0.1:0`
// with its socket (agent.sock), policies and audit log (agent.log) in dir,
// plus extra flags, and returns the metrics address and the file the
// agent's own log goes to (stderr: the journal under systemd). The agent
// gets SIGTERM when the test ends.
func startAgentWithMetrics(t *testing.T, dir string, extra ...string) (addr, errFile string) {
	t.Helper()
	errFile = filepath.Join(dir, "stderr")
	stderr, err := os.Create(errFile)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"agent", "--socket", filepath.Join(dir, "agent.sock"), "--policy-dir", dir,
		"--log", filepath.Join(dir, "agent.log"), "--metrics-addr", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(vigilBin, args...)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		stderr.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		stderr.Close()
	})
	return metricsAddrFromLog(t, errFile), errFile
}

// TestAgentDetachIdleReachesTheLoader: `vigil agent` attaches the syscall
// tracepoints once at start (so a kernel that refuses them fails the start)
// and by default detaches them while no container makes a bound call;
// `--detach-idle 0` keeps them attached, past twice the default idle time
// after which the default would have detached them. The agent's metrics
// show which, so the flag is followed through agent.Options to the loader.
func TestAgentDetachIdleReachesTheLoader(t *testing.T) {
	testenv.RequirePrivileged(t)
	for _, keep := range []bool{false, true} {
		var extra []string
		if keep {
			extra = []string{"--detach-idle", "0"}
		}
		addr, errFile := startAgentWithMetrics(t, t.TempDir(), extra...)
		settled := time.Now().Add(2*loader.DefaultDetachIdle + time.Second)
		deadline := time.Now().Add(30 * time.Second)
		var attached, attaches float64
		for {
			fams := parseMetrics(t, scrape(t, addr))
			// The gauge is registered once the agent has loaded its eBPF side.
			if f := fams["vigil_syscall_tracepoints_attached"]; f != nil {
				attached = f.Metric[0].GetGauge().GetValue()
				attaches = counterValue(fams["vigil_syscall_tracepoints_attaches_total"])
				if keep && time.Now().After(settled) || !keep && attached == 0 {
					break
				}
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if want := map[bool]float64{false: 0, true: 1}[keep]; attached != want || keep && attaches != 0 {
			t.Errorf("vigil agent %v with no container: vigil_syscall_tracepoints_attached %v (want %v), attaches_total %v\n%s",
				extra, attached, want, attaches, readLog(errFile))
		}
	}
}
