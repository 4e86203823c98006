package doctor

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/enforcer/testenv"
)

func TestMain(m *testing.M) {
	// Probe re-executes this test binary as its helper.
	RunHelperIfRequested()
	os.Exit(m.Run())
}

// sample returns a report with every catalog entry, openat2 missing.
func sample() Report {
	found := map[string]result{}
	for _, c := range catalog {
		found[c.name] = yes("detail of %s", c.name)
	}
	found[Openat2] = no("ENOSYS (function not implemented)")
	delete(found, Tracefs) // never probed: reported unavailable
	return assemble("6.18.0-test", found)
}

func TestReportJSONRoundTrip(t *testing.T) {
	r := sample()
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSON(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip changed the report:\n got %+v\nwant %+v", got, r)
	}
	// The field names are a contract (vigil bench embeds the report).
	var raw struct {
		Kernel   string           `json:"kernel"`
		CanRun   *bool            `json:"can_run"`
		Features []map[string]any `json:"features"`
	}
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if raw.Kernel != "6.18.0-test" || raw.CanRun == nil || len(raw.Features) != len(catalog) {
		t.Fatalf("top-level fields: %+v", raw)
	}
	for _, k := range []string{"name", "available", "detail", "required", "use", "remedy"} {
		if _, ok := raw.Features[0][k]; !ok {
			t.Errorf("feature JSON lacks %q: %v", k, raw.Features[0])
		}
	}
}

func TestMissingRequiredFeatureMeansVigilCannotRun(t *testing.T) {
	r := sample()
	if r.CanRun {
		t.Fatal("CanRun with openat2 missing")
	}
	missing := r.Missing()
	if len(missing) != 1 || missing[0].Name != Openat2 {
		t.Fatalf("Missing() = %+v, want only openat2", missing)
	}
	if f, _ := r.Feature(Tracefs); f.Available || f.Detail != "not probed" {
		t.Fatalf("unprobed tracefs: %+v", f)
	}
	var buf bytes.Buffer
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"openat2 *", "MISSING", "to fix: use Linux 5.6 or later", "vigil can run: no\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if !strings.HasSuffix(out, "vigil can run: no\n") {
		t.Errorf("the verdict is not the last line:\n%s", out)
	}
}

func TestCatalogNamesAreUniqueAndRequiredOnesAreTheBriefs(t *testing.T) {
	seen := map[string]bool{}
	var required []string
	for _, c := range catalog {
		if seen[c.name] {
			t.Errorf("duplicate feature %s", c.name)
		}
		seen[c.name] = true
		if c.use == "" || c.remedy == "" {
			t.Errorf("%s lacks its use or remedy text", c.name)
		}
		if c.required {
			required = append(required, c.name)
		}
	}
	want := []string{SeccompUserNotif, SeccompContinue, PidfdOpen, ProcessVMReadv, Openat2, Libseccomp}
	if !reflect.DeepEqual(required, want) {
		t.Errorf("required features %v, want %v", required, want)
	}
}

func TestActiveLockdown(t *testing.T) {
	for in, want := range map[string]string{
		"none [integrity] confidentiality\n": "integrity",
		"[none] integrity confidentiality\n": "none",
		"none integrity [confidentiality]":   "confidentiality",
		"garbage":                            "",
	} {
		if got := activeLockdown(in); got != want {
			t.Errorf("activeLockdown(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestProbeOnThisMachine checks the probes against what docs/design.md §1 says of
// the machines vigil is developed and tested on: seccomp notify with
// CONTINUE, ADDFD and SYNC_WAKE_UP works; fentry and BPF LSM loads fail.
func TestProbeOnThisMachine(t *testing.T) {
	testenv.RequirePrivileged(t)
	r := Probe()
	for _, name := range []string{SeccompUserNotif, SeccompContinue, SeccompAddFD, SeccompAddFDSend,
		SeccompWaitKillableRecv, SeccompSyncWakeUp, PidfdOpen, ProcessVMReadv, Openat2, Libseccomp} {
		if f, ok := r.Feature(name); !ok || !f.Available {
			t.Errorf("%s reported unavailable: %+v", name, f)
		}
	}
	for _, name := range []string{BPFFentry, BPFLSM} {
		if f, ok := r.Feature(name); !ok || f.Available {
			t.Errorf("%s reported available (this machine refuses it): %+v", name, f)
		}
	}
	if !r.CanRun {
		t.Errorf("CanRun false; missing %+v", r.Missing())
	}
}

// TestWithoutTheBindingVigilRunsOnlyUnverified is what a non-root user
// sees: every required feature, but BPF refused with EPERM.
func TestWithoutTheBindingVigilRunsOnlyUnverified(t *testing.T) {
	found := map[string]result{}
	for _, c := range catalog {
		found[c.name] = yes("detail of %s", c.name)
	}
	for _, name := range []string{BPFRingbuf, BPFRawTracepoint} {
		found[name] = no("EPERM (operation not permitted) (run as root)")
	}
	r := assemble("6.18.0-test", found)
	r.UID = 65534
	r.Limits = limits(&r)
	if r.CanRun || !r.CanRunUnverified || len(r.Missing()) != 0 || len(r.BindingMissing()) != 2 {
		t.Fatalf("report: can_run %v unverified %v missing %v binding %v", r.CanRun, r.CanRunUnverified, r.Missing(), r.BindingMissing())
	}
	var buf bytes.Buffer
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"what uid 65534 (not root) cannot do here:", "the eBPF binding cannot be loaded as uid 65534",
		"vigil run --userns: mapping host ids", "vigil agent:", "vigil can run: no (only 'vigil run --unverified'"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Root with the binding: nothing to say, and the verdict stays yes.
	for _, name := range []string{BPFRingbuf, BPFRawTracepoint} {
		found[name] = yes("ok")
	}
	r = assemble("6.18.0-test", found)
	if !r.CanRun || len(limits(&r)) != 0 {
		t.Fatalf("root with every feature: can_run %v limits %v", r.CanRun, limits(&r))
	}
}
