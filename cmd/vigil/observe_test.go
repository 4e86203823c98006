package main

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// observeSummary returns the "observe finished" line of observe's stderr.
func observeSummary(t *testing.T, stderr string) map[string]any {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["message"] == "observe finished" {
			return m
		}
	}
	t.Fatalf("no summary line in stderr:\n%s", stderr)
	return nil
}

func TestObserveSummaryTableAndExitLine(t *testing.T) {
	testenv.RequirePrivileged(t)
	dir := t.TempDir()
	stdout, stderr, code := vigil(t, "observe", "-c", "--", "sh", "-c", "cat /etc/hostname /nonexistent-"+strings.Repeat("x", 8)+" 2>/dev/null; echo done; ls "+dir)
	if code != 0 { // sh exits with ls's status
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "done") {
		t.Errorf("the command's stdout is not vigil's stdout under -c: %q", stdout)
	}
	// The strace -c layout: header, rule, a line per syscall, rule, total.
	header := regexp.MustCompile(`(?m)^% time +seconds +usecs/call +calls +errors +phantoms +syscall$`)
	openat := regexp.MustCompile(`(?m)^ *[0-9.]+ +[0-9.]+ +\d+ +(\d+) +(\d*) +(\d*) +openat$`)
	total := regexp.MustCompile(`(?m)^100\.00 +[0-9.]+ +\d+ +\d+ +\d* +\d* +total$`)
	if !header.MatchString(stderr) || !total.MatchString(stderr) {
		t.Fatalf("no strace -c style table on stderr:\n%s", stderr)
	}
	m := openat.FindStringSubmatch(stderr)
	if m == nil || m[1] == "0" || m[2] == "" {
		t.Fatalf("want an openat line with calls and errors (the missing file):\n%s", stderr)
	}
	if hasRecordOf(stderr, "openat") {
		t.Errorf("-c printed events too:\n%s", stderr)
	}
	sum := observeSummary(t, stderr)
	for _, k := range []string{"events", "lost", "phantoms", "syscalls", "reader_events_per_sec"} {
		if _, ok := sum[k]; !ok {
			t.Errorf("summary line without %s: %v", k, sum)
		}
	}
	if sum["lost"] != 0.0 || sum["phantoms"] != 0.0 {
		t.Errorf("summary %v: want nothing lost, no phantom", sum)
	}
	if per, _ := sum["syscalls"].(map[string]any); per == nil || per["openat"] == nil || per["execve"] == nil {
		t.Errorf("summary without per-syscall counts: %v", sum)
	}
}

// TestObserveExitsLikeAShellWhenTheCommandCannotStart: 127 for a name that
// leads nowhere, 126 for one that cannot be executed, as vigil run does.
func TestObserveExitsLikeAShellWhenTheCommandCannotStart(t *testing.T) {
	testenv.RequirePrivileged(t)
	for name, want := range map[string]int{"/nonexistent/cmd": 127, t.TempDir(): 126} {
		if _, stderr, code := vigil(t, "observe", "-o", os.DevNull, "--", name); code != want {
			t.Errorf("observe %s: exit %d, want %d (stderr %q)", name, code, want, stderr)
		}
	}
}

func TestObserveRejectsBadBufferSize(t *testing.T) {
	for _, size := range []string{"3M", "lots", "0"} {
		_, stderr, code := vigil(t, "observe", "--buffer-size", size, "--", "true")
		if code != 2 || !strings.Contains(stderr, "--buffer-size") {
			t.Errorf("--buffer-size %s: exit %d, stderr %q", size, code, stderr)
		}
	}
}

// hasRecordOf reports whether out holds an event of syscall name.
func hasRecordOf(out, name string) bool {
	for _, l := range strings.Split(out, "\n") {
		if r, err := audit.ParseRecord([]byte(l)); err == nil && r.Syscall == name {
			return true
		}
	}
	return false
}
