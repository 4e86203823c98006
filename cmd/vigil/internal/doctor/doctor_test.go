package doctor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/vigilsec/vigil/enforcer/reexec"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

func TestMain(m *testing.M) {
	// Probe re-executes this test binary as its helper.
	reexec.Run(HelperRole())
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

func TestBPFLSMIsAvailableOnlyWithBpfInTheActiveLSMList(t *testing.T) {
	loaded := yes("lsm/file_open loaded, attached and detached")
	refused := no("loading lsm/file_open: EPERM (operation not permitted)")
	for _, tc := range []struct {
		name   string
		prog   result
		sec    securityfs
		want   bool
		detail string
	}{
		{"loads, bpf active", loaded, securityfs{lsm: "lockdown,capability,landlock,yama,apparmor,tomoyo,bpf"}, true, "bpf is in the active LSM list"},
		{"loads, bpf not in the list", loaded, securityfs{lsm: "lockdown,capability,landlock,yama,apparmor\n"}, false, "boot with lsm=lockdown,capability,landlock,yama,apparmor,bpf"},
		{"loads, a name containing bpf is not bpf", loaded, securityfs{lsm: "capability,notbpf"}, false, "not in the active LSM list"},
		{"loads, list unreadable", loaded, securityfs{err: errors.New("securityfs not mounted")}, false, "whether it runs is unknown"},
		{"loads, list empty", loaded, securityfs{}, false, "missing or empty"},
		{"refused", refused, securityfs{lsm: "capability,bpf"}, false, "EPERM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := bpfLSM(tc.prog, tc.sec)
			if got.Available != tc.want || !strings.Contains(got.Detail, tc.detail) {
				t.Errorf("bpfLSM = %+v, want available %v with %q in the detail", got, tc.want, tc.detail)
			}
		})
	}
}

// TestProbeOnThisMachine checks the probes against independent witnesses of
// the running kernel, so it holds on every kernel of scripts/kernel-matrix.sh:
// what vigil requires works; SYNC_WAKE_UP exists from Linux 6.6 on (a
// minimum-version check that turns a missing feature into a failure); BPF LSM
// is reported available exactly when it loads and the LSM list securityfs
// gives names bpf.
func TestProbeOnThisMachine(t *testing.T) {
	testenv.RequirePrivileged(t)
	r := Probe()
	for _, name := range []string{SeccompUserNotif, SeccompContinue, SeccompAddFD, SeccompAddFDSend,
		SeccompWaitKillableRecv, PidfdOpen, ProcessVMReadv, Openat2, Libseccomp} {
		if f, ok := r.Feature(name); !ok || !f.Available {
			t.Errorf("%s reported unavailable: %+v", name, f)
		}
	}
	if !r.CanRun {
		t.Errorf("CanRun false; missing %+v", r.Missing())
	}
	major, minor := kernelVersion(t, r.Kernel)
	sync, _ := r.Feature(SeccompSyncWakeUp)
	if want := major > 6 || major == 6 && minor >= 6; sync.Available != want {
		t.Errorf("kernel %s: %s available = %v, want %v (%s)", r.Kernel, SeccompSyncWakeUp, sync.Available, want, sync.Detail)
	}
	sec := readSecurityfs()
	if sec.err != nil {
		t.Fatalf("reading securityfs: %v", sec.err)
	}
	lsm, _ := r.Feature(BPFLSM)
	if lsm.Available && !lsmActive(strings.TrimSpace(sec.lsm), "bpf") {
		t.Errorf("%s available but the active LSM list is %q", BPFLSM, sec.lsm)
	}
	prog := btfProgram(ebpf.LSM, ebpf.AttachLSMMac, "file_open", "lsm/file_open")
	if want := prog.Available && lsmActive(strings.TrimSpace(sec.lsm), "bpf"); lsm.Available != want {
		t.Errorf("%s available = %v, want %v (program: %s; LSMs %q)", BPFLSM, lsm.Available, want, prog.Detail, sec.lsm)
	}
}

// kernelVersion parses "6.1.0-57-amd64" into 6, 1.
func kernelVersion(t *testing.T, release string) (int, int) {
	t.Helper()
	var major, minor int
	if _, err := fmt.Sscanf(release, "%d.%d", &major, &minor); err != nil {
		t.Fatalf("parsing kernel release %q: %v", release, err)
	}
	return major, minor
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
