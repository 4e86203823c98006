package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/enforcer/testenv"
)

// benchFile is a minimal results file (schema version 1).
const benchFile = `{"version": 1, "time": "2025-06-01T12:00:00Z", "kernel": "6.18.0-test", "hostname": "box", "cpus": 2,
 "doctor": {"kernel": "6.18.0-test", "features": [], "can_run": true},
 "results": [
  {"workload": "getpid", "mechanism": "bare", "iterations": 1000, "reps": 5, "ns_per_op_median": 104.2, "ns_min": 100, "ns_max": 110, "ratio_bare": 1, "ratio_reference": 0.9},
  {"workload": "open", "mechanism": "refsup", "iterations": 1000, "reps": 5, "ns_per_op_median": 5850, "ns_min": 5000, "ns_max": 6000, "ratio_bare": 4.6, "ratio_reference": 1}
 ]}`

func TestBenchCompareOfAFileWithItselfPrintsRatiosOfOne(t *testing.T) {
	p := writeFile(t, "r.json", benchFile)
	stdout, stderr, code := vigil(t, "bench", "compare", p, p)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	rows := regexp.MustCompile(`(?m)^(getpid|open) .*$`).FindAllString(stdout, -1)
	if len(rows) != 2 {
		t.Fatalf("want 2 rows, got:\n%s", stdout)
	}
	for _, r := range rows {
		if !strings.HasSuffix(r, " 1.00") {
			t.Errorf("row %q: ratio is not 1.00", r)
		}
	}
}

func TestBenchCompareRefusesMismatchedVersions(t *testing.T) {
	a := writeFile(t, "a.json", benchFile)
	b := writeFile(t, "b.json", strings.Replace(benchFile, `"version": 1`, `"version": 2`, 1))
	_, stderr, code := vigil(t, "bench", "compare", a, b)
	if code != 2 || !strings.Contains(stderr, "schema versions differ") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestBenchRejectsUnknownNames(t *testing.T) {
	_, stderr, code := vigil(t, "bench", "--workloads", "fork")
	if code == 0 || !strings.Contains(stderr, `workload "fork"`) {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestBenchWritesJSONAndSVG(t *testing.T) {
	testenv.RequirePrivileged(t)
	dir := t.TempDir()
	js, svg := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.svg")
	stdout, stderr, code := vigil(t, "bench", "--iterations", "200", "--reps", "1",
		"--workloads", "exec", "--mechanisms", "bare,vigil-deny,refsup", "--json", js, "--svg", svg)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if !regexp.MustCompile(`(?m)^exec +vigil-deny +denied +200 `).MatchString(stdout) {
		t.Errorf("table lacks the vigil-deny row:\n%s", stdout)
	}
	var res struct {
		Version int `json:"version"`
		Results []struct {
			Mechanism string  `json:"mechanism"`
			NsPerOp   float64 `json:"ns_per_op_median"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(slurp(t, js)), &res); err != nil {
		t.Fatal(err)
	}
	if res.Version != 2 || len(res.Results) != 3 {
		t.Fatalf("results: %+v", res)
	}
	if !strings.Contains(slurp(t, svg), "<svg") {
		t.Fatal("no SVG written")
	}
}

func slurp(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBenchCompareOfThreeFilesHasAColumnEach(t *testing.T) {
	p := writeFile(t, "r.json", benchFile)
	stdout, stderr, code := vigil(t, "bench", "compare", p, p, p)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"A NS/OP (×BARE)", "C NS/OP (×BARE)", "5.85 µs (4.60×)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if _, _, code := vigil(t, "bench", "compare", p); code == 0 {
		t.Error("compare of one file succeeded")
	}
}
