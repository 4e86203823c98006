package doctor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Run is one kernel's column in a comparison: its doctor report and, when
// scripts/kernel-matrix.sh produced it, the tests that ran there, the time
// each step of the pass took and what each mechanism cost relative to that
// kernel's own bare run.
type Run struct {
	// Name labels the column: the directory or file name it came from.
	Name   string
	Report Report
	// Tests are the top-level tests' last outcomes, in the order they ran;
	// a package whose binary failed without a failing test (a panic, a
	// timeout) appears with an empty Test.
	Tests []TestOutcome
	// Steps are the pass's steps in order, with seconds and exit status.
	Steps []Step
	// Costs come from a `vigil bench --json` file.
	Costs []Cost
}

// TestOutcome is how one test ended: "pass", "fail" or "skip".
type TestOutcome struct {
	Package, Test, Action string
}

// Step is one step of a kernel-matrix pass (the "steps" file).
type Step struct {
	Name    string
	Seconds float64
	Status  int
}

// Cost is one workload × mechanism of a bench run, relative to bare.
type Cost struct {
	Workload, Mechanism string
	// RatioBare is ns/op over the same kernel's bare ns/op (0: unknown).
	RatioBare float64
	// Denied says the operations were refused (the cost of a denial).
	Denied bool
}

// Files of a kernel-matrix result directory.
const (
	runDoctorFile = "doctor.json"
	runTestsFile  = "tests.jsonl"
	runStepsFile  = "steps"
	runBenchFile  = "bench.json"
)

// ErrNotAReport is returned for a file that is neither a doctor report nor
// a bench results file.
var ErrNotAReport = errors.New("neither a vigil doctor --json report nor a vigil bench --json file")

// LoadRun reads one column of a comparison from path: a directory that
// scripts/kernel-matrix.sh wrote (doctor.json, and tests.jsonl, steps and
// bench.json where present), a `vigil doctor --json` report, or a
// `vigil bench --json` file (which embeds the report).
func LoadRun(path string) (Run, error) {
	run := Run{Name: filepath.Base(filepath.Clean(path))}
	st, err := os.Stat(path)
	if err != nil {
		return run, fmt.Errorf("reading %s: %w", path, err)
	}
	if !st.IsDir() {
		run.Name = strings.TrimSuffix(run.Name, filepath.Ext(run.Name))
		err := loadJSONFile(&run, path, true)
		return run, err
	}
	if err := loadJSONFile(&run, filepath.Join(path, runDoctorFile), false); err != nil {
		return run, err
	}
	if err := loadOptional(filepath.Join(path, runTestsFile), func(b []byte) error {
		run.Tests, err = parseTestEvents(b)
		return err
	}); err != nil {
		return run, err
	}
	if err := loadOptional(filepath.Join(path, runStepsFile), func(b []byte) error {
		run.Steps, err = parseSteps(b)
		return err
	}); err != nil {
		return run, err
	}
	bench := filepath.Join(path, runBenchFile)
	if _, err := os.Stat(bench); err == nil {
		var b Run
		if err := loadJSONFile(&b, bench, true); err != nil {
			return run, err
		}
		run.Costs = b.Costs
	}
	return run, nil
}

// loadOptional calls parse with the file's contents when it exists.
func loadOptional(name string, parse func([]byte) error) error {
	b, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	if err := parse(b); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// benchFile is the part of a `vigil bench --json` file (schema versions 1
// and 2, cmd/vigil/internal/bench) a comparison reads: version 2 changed
// what the refsup mechanism traps, not these fields. The bench package imports
// this one, so the fields are named here; bench's tests check the two agree.
type benchFile struct {
	Version int     `json:"version"`
	Doctor  *Report `json:"doctor"`
	Results []struct {
		Workload  string  `json:"workload"`
		Mechanism string  `json:"mechanism"`
		RatioBare float64 `json:"ratio_bare"`
		Outcome   string  `json:"outcome"`
	} `json:"results"`
}

// loadJSONFile fills run from a doctor report, or (when bench is true) from
// a bench results file too.
func loadJSONFile(run *Run, name string, bench bool) error {
	b, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return fmt.Errorf("%s: %w: %v", name, ErrNotAReport, err)
	}
	_, isReport := probe["features"]
	_, isBench := probe["results"]
	switch {
	case isReport:
		r, err := ReadJSON(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		run.Report = r
	case bench && isBench:
		var f benchFile
		if err := json.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("%s: decoding bench results: %w", name, err)
		}
		if f.Version != 1 && f.Version != 2 {
			return fmt.Errorf("%s: bench results schema version %d, this vigil reads 1 and 2", name, f.Version)
		}
		if f.Doctor != nil {
			run.Report = *f.Doctor
		}
		for _, x := range f.Results {
			run.Costs = append(run.Costs, Cost{Workload: x.Workload, Mechanism: x.Mechanism,
				RatioBare: x.RatioBare, Denied: x.Outcome == "denied"})
		}
	default:
		return fmt.Errorf("%s: %w", name, ErrNotAReport)
	}
	return nil
}

// testEvent is a line of `go test -json` (test2json) output.
type testEvent struct {
	Action  string `json:"Action"`
	Package string `json:"Package"`
	Test    string `json:"Test"`
}

// parseTestEvents keeps the last outcome of every top-level test (subtests
// roll up into theirs), and a package-level failure that no failed test
// explains (a panic, a timeout, a binary that did not start).
func parseTestEvents(b []byte) ([]TestOutcome, error) {
	type key struct{ pkg, test string }
	index := map[key]int{}
	var out []TestOutcome
	pkgFailed := map[string]bool{}
	testFailed := map[string]bool{}
	var pkgs []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var e testEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("line %d: not a go test -json event: %w", line, err)
		}
		if e.Action != "pass" && e.Action != "fail" && e.Action != "skip" {
			continue
		}
		if e.Test == "" {
			if _, seen := pkgFailed[e.Package]; !seen {
				pkgs = append(pkgs, e.Package)
			}
			pkgFailed[e.Package] = pkgFailed[e.Package] || e.Action == "fail"
			continue
		}
		if strings.Contains(e.Test, "/") {
			continue
		}
		if e.Action == "fail" {
			testFailed[e.Package] = true
		}
		k := key{e.Package, e.Test}
		if i, ok := index[k]; ok {
			out[i].Action = e.Action
			continue
		}
		index[k] = len(out)
		out = append(out, TestOutcome{Package: e.Package, Test: e.Test, Action: e.Action})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading test events: %w", err)
	}
	for _, p := range pkgs {
		if pkgFailed[p] && !testFailed[p] {
			out = append(out, TestOutcome{Package: p, Action: "fail"})
		}
	}
	return out, nil
}

// parseSteps reads "NAME SECONDS STATUS" lines.
func parseSteps(b []byte) ([]Step, error) {
	var out []Step
	for i, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want NAME SECONDS STATUS, got %q", i+1, l)
		}
		sec, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: seconds: %w", i+1, err)
		}
		status, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, fmt.Errorf("line %d: status: %w", i+1, err)
		}
		out = append(out, Step{Name: f[0], Seconds: sec, Status: status})
	}
	return out, nil
}
