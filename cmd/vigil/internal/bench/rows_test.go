package bench

import (
	"bytes"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// threadsFixture returns results with the throughput rows of one thread
// count and a memory measurement.
func threadsFixture() *Results {
	r := fixture()
	for _, x := range []struct {
		m  string
		ns float64
	}{{"bare", 2500}, {"vigil-allow-bound", 40000}, {"refsup", 10000}} {
		r.Results = append(r.Results, Result{Workload: "open-threads-8", Mechanism: x.m, Iterations: 4000, Reps: 5,
			NsPerOpMedian: x.ns, NsMin: x.ns, NsMax: x.ns, Outcome: "allowed", Threads: 8, OpsPerSec: 1e9 / x.ns})
	}
	r.fillRatios()
	r.Memory = &Memory{Workload: MemoryWorkload, Mechanism: MemoryMechanism, Threads: 8, Calls: 1_000_000,
		RestKiB: 40_000, RestAnonKiB: 9_000, LoadKiBMedian: 45_000, LoadKiBMax: 47_000, LoadSamples: 900,
		AfterKiB: 44_100, AfterAnonKiB: 9_500, PeakKiB: 47_500, GrowthKiB: 100, GrowthAnonKiB: -20, OpsPerSec: 25_000,
		Rounds: []MemoryRound{{Calls: 500_000, RSSKiB: 44_000, AnonKiB: 9_520}, {Calls: 1_000_000, RSSKiB: 44_100, AnonKiB: 9_500}}}
	r.OtherTracepoints = []string{"enforcer.test[4242]"}
	return r
}

func TestThreadsAndMemoryRoundTripThroughJSON(t *testing.T) {
	r := threadsFixture()
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"memory"`, `"rest_kib"`, `"load_kib_median"`, `"after_kib"`, `"growth_kib"`, `"rest_anon_kib"`, `"after_anon_kib"`, `"growth_anon_kib"`, `"anon_kib"`,
		`"rounds"`, `"threads"`, `"ops_per_sec"`, `"other_tracepoints"`} {
		if !strings.Contains(buf.String(), k) {
			t.Errorf("results JSON lacks %s", k)
		}
	}
	got, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip changed the results:\n got %+v\nwant %+v", got, r)
	}
}

func TestWriteTableShowsThroughputAndMemory(t *testing.T) {
	var buf bytes.Buffer
	if err := threadsFixture().WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"OPS/S ÷ REFSUP",
		// vigil's throughput is a quarter of the reference's.
		"open-threads-8        8  vigil-allow-bound  allowed  25.0k            0.25",
		"open-threads-8        8  refsup             allowed   100k            1.00",
		"at rest 39.1 MiB (anon 8.79 MiB), under load 43.9 MiB (max 45.9 MiB, 900 readings)",
		"growth after the first round +100 KiB, anon -20 KiB",
		"enforcer.test[4242]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Single-threaded workloads are not throughput rows.
	if strings.Contains(out[strings.Index(out, "OPS/S"):], "getpid") {
		t.Errorf("throughput table lists a single-threaded workload:\n%s", out)
	}
}

func TestCompareShowsMemoryOfBothRuns(t *testing.T) {
	a, b := threadsFixture(), threadsFixture()
	b.Memory.AfterKiB = 88_200
	var buf bytes.Buffer
	if err := WriteCompare(&buf, "a.json", a, "b.json", b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "at rest after the calls             43.1 MiB  86.1 MiB  2.00") {
		t.Errorf("comparison lacks the memory after the calls:\n%s", buf.String())
	}
	b.Memory = nil
	buf.Reset()
	if err := WriteCompare(&buf, "a.json", a, "b.json", b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "at rest after the calls             43.1 MiB  —  n/a") {
		t.Errorf("comparison with memory in one file only:\n%s", buf.String())
	}
}

func TestDefaultPairsAndNamedPairs(t *testing.T) {
	ws := Workloads()
	find := func(name string) Workload {
		i := slices.IndexFunc(ws, func(w Workload) bool { return w.Name == name })
		if i < 0 {
			t.Fatalf("no workload %s", name)
		}
		return ws[i]
	}
	for _, tc := range []struct {
		w, m  string
		named bool
		want  bool
	}{
		{"open", "strace", false, true},
		{"open-threads-8", "vigil-allow-bound", false, true},
		{"open-threads-8", "refsup", false, true},
		{"open-threads-8", "bare", false, true},
		{"open-threads-8", "strace", false, false},
		{"open-threads-2", "vigil-passthrough", false, false},
		{"getpid", "bare-beside-vigil", false, true},
		{"open", "bare-beside-vigil", false, false},
		{"open", "bare-beside-vigil", true, true},
		{"open-threads-2", "vigil-passthrough", true, true},
		// A settled vigil cannot measure a trapped workload: its bound
		// call attaches the tracepoints the mechanism measures without.
		{"getpid", "vigil-allow-bound-settled", true, true},
		{"open", "vigil-allow-bound-settled", true, false},
		{"write", "vigil-allow-bound-settled", false, false},
		{"open", "refsup-resolve-beside-vigil-attached", false, true},
		{"getpid", "refsup-resolve-beside-vigil-attached", false, false},
	} {
		if got := pairs(find(tc.w), mechanism(t, tc.m), tc.named); got != tc.want {
			t.Errorf("pairs(%s, %s, named %v) = %v, want %v", tc.w, tc.m, tc.named, got, tc.want)
		}
	}
	for _, c := range ThreadCounts {
		w := find(threadsPrefix + strconv.Itoa(c))
		if w.Threads != c {
			t.Errorf("%s has %d threads", w.Name, w.Threads)
		}
	}
	if find("open").Threads != 1 || find(MemoryWorkload).Threads != 8 {
		t.Error("thread counts of open / the memory workload")
	}
}

func TestFormatKiBAndCount(t *testing.T) {
	for in, want := range map[int]string{812: "812 KiB", 1024: "1.00 MiB", 23_962: "23.4 MiB", 204_800: "200 MiB"} {
		if got := formatKiB(in); got != want {
			t.Errorf("formatKiB(%d) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]string{0: "—", -5: "—", 845: "845", 71_234: "71.2k", 1_200_000: "1.20M"} {
		if got := formatCount(in); got != want {
			t.Errorf("formatCount(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestMemoryRounds(t *testing.T) {
	for in, want := range map[int]int{1: 1, 3: 3, 10: 10, 1_000_000: maxMemoryRounds} {
		if got := memoryRounds(in); got != want {
			t.Errorf("memoryRounds(%d) = %d, want %d", in, got, want)
		}
	}
}
