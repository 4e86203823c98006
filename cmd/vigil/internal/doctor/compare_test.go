package doctor

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// reportWith returns sample() with the named features' availability set.
func reportWith(kernel string, avail map[string]bool) Report {
	found := map[string]result{}
	for _, c := range catalog {
		found[c.name] = yes("detail of %s on %s", c.name, kernel)
	}
	for name, ok := range avail {
		if !ok {
			found[name] = no("%s refused on %s", name, kernel)
		}
	}
	return assemble(kernel, found)
}

// writeRunDir writes a kernel-matrix result directory.
func writeRunDir(t *testing.T, dir string, r Report, files map[string]string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, runDoctorFile), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const testsNew = `{"Action":"run","Package":"loader","Test":"TestExecBinding"}
{"Action":"run","Package":"loader","Test":"TestExecBinding/execveat_of_an_fd_runs"}
{"Action":"output","Package":"loader","Test":"TestExecBinding/execveat_of_an_fd_runs","Output":"ok\n"}
{"Action":"pass","Package":"loader","Test":"TestExecBinding/execveat_of_an_fd_runs","Elapsed":0.1}
{"Action":"pass","Package":"loader","Test":"TestExecBinding","Elapsed":0.2}
{"Action":"pass","Package":"loader","Test":"TestCloneBinding","Elapsed":0.2}
{"Action":"skip","Package":"loader","Test":"TestOptional","Elapsed":0}
{"Action":"pass","Package":"loader","Elapsed":1.5}
`

const testsOld = `{"Action":"fail","Package":"loader","Test":"TestExecBinding/execveat_of_an_fd_runs","Elapsed":0.1}
{"Action":"fail","Package":"loader","Test":"TestExecBinding","Elapsed":0.2}
{"Action":"pass","Package":"loader","Test":"TestCloneBinding","Elapsed":0.2}
{"Action":"pass","Package":"loader","Test":"TestOptional","Elapsed":0}
{"Action":"fail","Package":"loader","Elapsed":1.5}
{"Action":"pass","Package":"enforcer","Test":"TestFexecveIsBoundAndRuns","Elapsed":1}
{"Action":"fail","Package":"enforcer","Elapsed":600}
`

const benchJSON = `{"version": 1, "time": "2026-12-01T12:00:00Z", "kernel": "6.1.0-57-amd64", "hostname": "km", "cpus": 2,
 "doctor": %s,
 "results": [
  {"workload": "open", "mechanism": "bare", "ns_per_op_median": 2000, "ratio_bare": 1, "outcome": "allowed"},
  {"workload": "open", "mechanism": "vigil-allow-bound", "ns_per_op_median": 40000, "ratio_bare": 20, "outcome": "allowed"},
  {"workload": "open", "mechanism": "vigil-deny", "ns_per_op_median": 30000, "ratio_bare": 15, "outcome": "denied"}
 ]}`

func TestParseTestEventsKeepsTopLevelOutcomesAndUnexplainedPackageFailures(t *testing.T) {
	got, err := parseTestEvents([]byte(testsOld))
	if err != nil {
		t.Fatal(err)
	}
	want := []TestOutcome{
		{"loader", "TestExecBinding", "fail"},
		{"loader", "TestCloneBinding", "pass"},
		{"loader", "TestOptional", "pass"},
		{"enforcer", "TestFexecveIsBoundAndRuns", "pass"},
		// enforcer failed with no failing test: a timeout or a panic.
		{"enforcer", "", "fail"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if _, err := parseTestEvents([]byte("{\"Action\":\"pass\"}\nnot json\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad line: err %v, want one naming line 2", err)
	}
}

func TestParseSteps(t *testing.T) {
	got, err := parseSteps([]byte("doctor 4.2 0\nloader 48.0 1\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Step{{"doctor", 4.2, 0}, {"loader", 48, 1}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{"doctor 4.2\n", "doctor x 0\n", "doctor 1 x\n"} {
		if _, err := parseSteps([]byte(bad)); err == nil {
			t.Errorf("parseSteps(%q) accepted it", bad)
		}
	}
}

func TestLoadRunReadsEachKindOfInput(t *testing.T) {
	dir := t.TempDir()
	rep := reportWith("6.1.0-57-amd64", map[string]bool{SeccompSyncWakeUp: false})
	var rb bytes.Buffer
	if err := rep.WriteJSON(&rb); err != nil {
		t.Fatal(err)
	}
	runDir := writeRunDir(t, filepath.Join(dir, "6.1"), rep, map[string]string{
		runTestsFile: testsOld,
		runStepsFile: "doctor 4.2 0\n",
		runBenchFile: strings.Replace(benchJSON, "%s", rb.String(), 1),
	})
	r, err := LoadRun(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "6.1" || r.Report.Kernel != "6.1.0-57-amd64" || len(r.Tests) != 5 || len(r.Steps) != 1 || len(r.Costs) != 3 {
		t.Fatalf("directory run: %+v", r)
	}
	if c := r.Costs[2]; c.Mechanism != "vigil-deny" || c.RatioBare != 15 || !c.Denied {
		t.Errorf("cost %+v, want vigil-deny 15× denied", c)
	}

	doctorFile := filepath.Join(dir, "host.json")
	if err := os.WriteFile(doctorFile, rb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err := LoadRun(doctorFile); err != nil || r.Name != "host" || len(r.Report.Features) != len(catalog) || r.Tests != nil {
		t.Fatalf("doctor file: %+v, %v", r, err)
	}
	benchFile := filepath.Join(dir, "b.json")
	if err := os.WriteFile(benchFile, []byte(strings.Replace(benchJSON, "%s", rb.String(), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err := LoadRun(benchFile); err != nil || r.Report.Kernel != "6.1.0-57-amd64" || len(r.Costs) != 3 {
		t.Fatalf("bench file: %+v, %v", r, err)
	}

	for name, content := range map[string]string{
		"notjson.json": "hello",
		"other.json":   `{"name": "something else"}`,
		"v3.json":      `{"version": 3, "results": []}`,
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadRun(p); err == nil {
			t.Errorf("LoadRun(%s) accepted %q", name, content)
		} else if name != "v3.json" && !errors.Is(err, ErrNotAReport) {
			t.Errorf("LoadRun(%s): %v, want ErrNotAReport", name, err)
		}
	}
	if _, err := LoadRun(filepath.Join(dir, "missing")); err == nil {
		t.Error("LoadRun of a missing path succeeded")
	}
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRun(empty); err == nil || !strings.Contains(err.Error(), runDoctorFile) {
		t.Errorf("LoadRun of a directory without %s: %v", runDoctorFile, err)
	}
}

// cells returns the cells of the comparison row whose label is label.
func cells(t *testing.T, out, label string) []string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(label) + `  +(.*)$`)
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no row %q in:\n%s", label, out)
	}
	return regexp.MustCompile(`  +`).Split(strings.TrimSpace(m[1]), -1)
}

func TestWriteComparisonShowsFeaturesUsesTestsAndCosts(t *testing.T) {
	newer := Run{Name: "host", Report: reportWith("6.18.44", map[string]bool{BPFLSM: false})}
	newer.Tests, _ = parseTestEvents([]byte(testsNew))
	older := Run{Name: "6.1", Report: reportWith("6.1.0-57-amd64", map[string]bool{SeccompSyncWakeUp: false, BPFRingbuf: false})}
	older.Tests, _ = parseTestEvents([]byte(testsOld))
	older.Steps = []Step{{"doctor", 4.2, 0}, {"loader", 180, 1}}
	older.Costs = []Cost{{"open", "bare", 1, false}, {"open", "vigil-allow-bound", 20, false}, {"open", "vigil-deny", 15, true}}
	var b bytes.Buffer
	if err := WriteComparison(&b, []Run{newer, older}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for label, want := range map[string][]string{
		"kernel":               {"6.18.44", "6.1.0-57-amd64"},
		"seccomp_sync_wake_up": {"yes", "no"},
		"bpf_lsm":              {"no", "yes"},
		"openat2 *":            {"yes", "yes"},
		"wake-up":              {"SYNC_WAKE_UP", "scheduler default"},
		// No ring buffer: the binding cannot load.
		"binding":                           {"eBPF raw tracepoints", "none: --unverified only"},
		"loader":                            {"2/3, 1 skipped", "2/3"},
		"enforcer":                          {"—", "1/1"},
		"loader TestExecBinding":            {"pass", "FAIL"},
		"loader TestOptional":               {"skip", "pass"},
		"enforcer (the test binary failed)": {"—", "FAIL"},
		"open vigil-allow-bound":            {"—", "20.00×"},
		"open vigil-deny":                   {"—", "15.00× †"},
		"doctor":                            {"—", "4.2"},
		"seccomp_wait_killable_recv":        {"yes", "yes"},
		"listener":                          {"WAIT_KILLABLE_RECV", "WAIT_KILLABLE_RECV"},
		"emulation":                         {"ADDFD_SEND", "ADDFD_SEND"},
		"vigil can run":                     {"yes", "--unverified only"},
		"seccomp_user_notif *":              {"yes", "yes"},
		"bpf_ringbuf":                       {"yes", "no"},
		"watchee dirfds":                    {"pidfd_getfd", "pidfd_getfd"},
		"trap":                              {"seccomp user notification", "seccomp user notification"},
	} {
		if got := cells(t, out, label); !reflect.DeepEqual(got, want) {
			t.Errorf("row %q = %q, want %q", label, got, want)
		}
	}
	// The step that failed shows its status; a test that passed everywhere
	// has no row of its own; bare is the baseline, not a row.
	if !strings.Contains(out, "180.0 (exit 1)") {
		t.Errorf("the failed step's status is missing:\n%s", out)
	}
	for _, absent := range []string{"loader TestCloneBinding", "open bare"} {
		if strings.Contains(out, absent) {
			t.Errorf("comparison has a row %q:\n%s", absent, out)
		}
	}
	// The details name what each probe saw for features that differ only.
	details := out[strings.Index(out, "features that differ"):]
	for _, want := range []string{"seccomp_sync_wake_up\n", "6.1: no: seccomp_sync_wake_up refused on 6.1.0-57-amd64", "host: yes: detail of seccomp_sync_wake_up"} {
		if !strings.Contains(details, want) {
			t.Errorf("details lack %q:\n%s", want, details)
		}
	}
	if strings.Contains(details, "openat2") {
		t.Errorf("details list a feature that does not differ:\n%s", details)
	}
}

func TestWriteComparisonOfOneRunAndOfNone(t *testing.T) {
	var b bytes.Buffer
	if err := WriteComparison(&b, []Run{{Name: "only", Report: sample()}}); err != nil {
		t.Fatal(err)
	}
	if got := cells(t, b.String(), "openat2 *"); !reflect.DeepEqual(got, []string{"MISSING"}) {
		t.Errorf("openat2 row %q, want MISSING", got)
	}
	if got := cells(t, b.String(), "trap"); !reflect.DeepEqual(got, []string{"none: vigil cannot run"}) {
		t.Errorf("trap row %q", got)
	}
	if strings.Contains(b.String(), "features that differ") {
		t.Errorf("one run has nothing that differs:\n%s", b.String())
	}
	if err := WriteComparison(&b, nil); err == nil {
		t.Error("comparing no runs succeeded")
	}
}

func FuzzParseTestEvents(f *testing.F) {
	f.Add([]byte(testsOld))
	f.Add([]byte(testsNew))
	f.Add([]byte("{}\n\n{\"Action\":\"fail\"}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := parseTestEvents(b)
		if err != nil {
			return
		}
		for _, o := range out {
			if o.Action != "pass" && o.Action != "fail" && o.Action != "skip" || strings.Contains(o.Test, "/") {
				t.Fatalf("outcome %+v", o)
			}
		}
	})
}

func FuzzParseSteps(f *testing.F) {
	f.Add([]byte("doctor 4.2 0\nloader 48.0 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseSteps(b)
	})
}
