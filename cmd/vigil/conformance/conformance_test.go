package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

var (
	// vigilBin is the vigil binary built from this tree, run as a user does.
	vigilBin string
	// goProg is testdata/goroutines built for the goroutines case.
	goProg string
	// dataDir is this package's testdata, absolute.
	dataDir string
)

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "vigil-conformance-bin-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	// The watchees run as root, but keep the binaries usable by anyone.
	if err := os.Chmod(dir, 0o755); err != nil {
		return 0, err
	}
	root := testenv.RepoRoot()
	dataDir = filepath.Join(root, "cmd", "vigil", "conformance", "testdata")
	vigilBin = filepath.Join(dir, "vigil")
	goProg = filepath.Join(dir, "goroutines")
	for _, b := range []struct{ out, pkg string }{
		{vigilBin, "./cmd/vigil"},
		{goProg, "./cmd/vigil/conformance/testdata/goroutines"},
	} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("building %s: %v\n%s", b.pkg, err, out)
		}
	}
	return m.Run(), nil
}

// program is one conformance case: testdata/cases/<name>.sh.
type program struct {
	name string
	// needs are the commands the case runs; scripts/deps.sh installs them.
	needs []string
	tree  treeOptions
}

// programs are the conformance cases. Repetition counts live in the
// scripts (git: 20 rounds of init, commit, clone, push, gc, fsck). The
// whole suite — 27 programs, each run four times — takes 3 to 4 minutes on
// this 2-core machine (git and venv about a minute each).
var programs = []program{
	{name: "tar", needs: []string{"tar", "gzip"}, tree: treeOptions{mtimes: []string{"src/**", "x1/src/**", "x2/src/**", "x3/src/**", "x3/piped/a/**"}}},
	{name: "cp", needs: []string{"cp"}, tree: treeOptions{mtimes: []string{"src/**", "dst/**", "dst2/**", "dst3/a/**",
		"dst3/hello.txt", "dst3/hard", "dst3/over", "dst3/sparse", "dst3/deref-copy", "hardlinked/**"}}},
	{name: "mv", needs: []string{"mv"}, tree: treeOptions{fileMtimes: []string{"src/**", "d1/**", "d2/**"}}},
	{name: "install", needs: []string{"install"}, tree: treeOptions{mtimes: []string{"one", "preserved~"}}},
	{name: "chmodown", needs: []string{"chmod", "chown", "chgrp"}},
	{name: "ln", needs: []string{"ln"}},
	{name: "sed", needs: []string{"sed"}},
	{name: "bash", needs: []string{"bash"}},
	{name: "git", needs: []string{"git"}, tree: treeOptions{ignoreContent: []string{"**/.git/index"}}},
	{name: "venv", needs: []string{"/usr/bin/python3"}},
	{name: "pythreads", needs: []string{"/usr/bin/python3"}},
	{name: "xattr", needs: []string{"/usr/bin/python3"}},
	{name: "identity", needs: []string{"/usr/bin/python3"}},
	{name: "userns", needs: []string{"unshare", "mount", "umount"}},
	{name: "make", needs: []string{"gcc", "make", "ar"}},
	{name: "sqlite", needs: []string{"sqlite3"}},
	{name: "rsync", needs: []string{"rsync"}, tree: treeOptions{mtimes: []string{"src/*/**", "dst/*/**", "dsth/*/**", "plain/**"}}},
	{name: "busybox", needs: []string{"/bin/busybox"}},
	{name: "compress", needs: []string{"gzip", "xz", "bzip2", "zstd", "lz4"}},
	{name: "helpers", needs: []string{"gpg", "gpgconf", "tmux", "script", "stty", "ssh-keygen", "/usr/bin/python3"},
		tree: treeOptions{ignoreContent: []string{"gnupg/*", "msg.sig", "key", "key.pub"}, ignoreSize: []string{"gnupg/pubring.kbx", "msg.sig"}}},
	{name: "names", needs: []string{"/usr/bin/python3", "tar"}},
	{name: "dpkg", needs: []string{"dpkg-deb", "tar", "xz"}, tree: treeOptions{mtimes: []string{"pkg/**", "out/usr/**"}}},
	{name: "textutils", needs: []string{"sort", "split", "csplit", "dd", "truncate", "fallocate", "mktemp", "flock",
		"xargs", "diff", "patch", "perl", "shred", "awk", "base64", "od", "tac", "sha256sum"}},
	{name: "goroutines"},
	{name: "memfd", needs: []string{"/usr/bin/python3"}},
	{name: "netns", needs: []string{"ip"}},
	{name: "chroot", needs: []string{"unshare", "chroot", "/bin/busybox"}},
}

// policyCase is one way of running a program under vigil.
type policyCase struct {
	name string
	// file is the policy under testdata/policies; "" runs the embedded
	// default policy (no --policy).
	file string
}

var policyCases = []policyCase{
	{name: "default"},
	{name: "trap-all", file: "trap-all.yaml"},
	{name: "write-protect", file: "write-protect.yaml"},
}

// fixture is what the policies name: a directory no program touches.
type fixture struct {
	base      string
	protected string // write-protect.yaml denies writes under it
	denied    string // trap-all.yaml denies everything under it
	scratch   string // on tmpfs, for moves across file systems
	policies  map[string]string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{base: t.TempDir(), policies: map[string]string{}}
	var err error
	if f.scratch, err = os.MkdirTemp("/dev/shm", "vigil-conformance-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(f.scratch) })
	f.protected = filepath.Join(f.base, "protected")
	f.denied = filepath.Join(f.base, "denied")
	for _, d := range []string{f.protected, f.denied} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "file"), []byte("keep\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, pc := range policyCases {
		if pc.file == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dataDir, "policies", pc.file))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.NewReplacer("@PROTECTED@", f.protected, "@DENIED@", f.denied).Replace(string(b))
		// In a directory of their own: the agent's --policy-dir.
		p := filepath.Join(f.base, "policies", pc.file)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		f.policies[pc.name] = p
	}
	return f
}

// outcome is what one run of a program produced.
type outcome struct {
	stdout, stderr string
	code           int
	tree           map[string]string
	took           time.Duration
	// Under vigil: its own log lines taken out of stderr, and the path of
	// the audit log.
	vigilLines []string
	auditLog   string
}

// run runs program p bare (pol nil) or under `vigil run` with pol.
func (f *fixture) run(t *testing.T, p program, how string, pol *policyCase) outcome {
	t.Helper()
	return f.runWith(t, p, how, func(t *testing.T, s runSetup) ([]string, func() []string) {
		if pol == nil {
			return s.argv, nil
		}
		v := []string{vigilBin, "run", "--log", s.auditLog, "--log-level", "debug"}
		if pol.file != "" {
			v = append(v, "--policy", f.policies[pol.name])
		}
		return append(append(v, "--"), s.argv...), nil
	})
}

// runSetup is what one run of a case is made of.
type runSetup struct {
	id       string   // the program's name and how it runs, unique in a test
	dir      string   // the run directory, the case's working directory
	env      []string // the case's whole environment
	argv     []string // the case: bash testdata/cases/NAME.sh
	auditLog string   // where vigil writes the run's records
	scratch  string   // the case's tmpfs directory, which it writes too
}

// A launcher returns the command line that runs s.argv as a run needs it:
// as it is, under `vigil run`, or in a container. after, when not nil, is
// called once the command has ended (however it ended) and returns vigil's
// own log lines, for a run whose vigil does not write them to the
// command's stderr.
type launcher func(t *testing.T, s runSetup) (argv []string, after func() (vigilLines []string))

// runWith runs program p as launch makes it run, in the program's run
// directory, which it creates empty; afterwards it moves the directory
// aside (named after how it ran) for a reader. Every run of a program has
// the same directory path, so files that embed it (a venv's scripts and
// their hashes in pip's RECORD, git's config) compare as they are.
func (f *fixture) runWith(t *testing.T, p program, how string, launch launcher) outcome {
	t.Helper()
	dir := filepath.Join(f.base, p.name, "run")
	for _, d := range []string{"home", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		if err := os.Rename(dir, filepath.Join(f.base, p.name, how)); err != nil {
			t.Errorf("moving the run directory aside: %v", err)
		}
	}()
	// A tmpfs directory for moves across file systems, also at one path.
	scratch := f.scratch + "/" + p.name
	if err := os.Mkdir(scratch, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(scratch)
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + filepath.Join(dir, "home"),
		"TMPDIR=" + filepath.Join(dir, "tmp"),
		"LC_ALL=C.UTF-8",
		"TZ=UTC",
		// Reproducible builds: py_compile then writes hash-based .pyc files.
		"SOURCE_DATE_EPOCH=1700000000",
		"PYTHONHASHSEED=0",
		"PIP_NO_CACHE_DIR=1",
		"PIP_DISABLE_PIP_VERSION_CHECK=1",
		// A run that hangs is ended with SIGABRT (see hangStacks): vigil
		// then prints every goroutine, its receivers among them. Bare runs
		// get it too, so the environments stay the same.
		"GOTRACEBACK=all",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Conformance", "GIT_AUTHOR_EMAIL=conformance@example.invalid",
		"GIT_COMMITTER_NAME=Conformance", "GIT_COMMITTER_EMAIL=conformance@example.invalid",
		"GIT_AUTHOR_DATE=1700000000 +0000", "GIT_COMMITTER_DATE=1700000000 +0000",
		// One delta-search thread, so packs do not depend on scheduling.
		"GIT_CONFIG_COUNT=2", "GIT_CONFIG_KEY_0=pack.threads", "GIT_CONFIG_VALUE_0=1",
		"GIT_CONFIG_KEY_1=gc.autoDetach", "GIT_CONFIG_VALUE_1=false",
		"CONFORMANCE_DATA=" + dataDir,
		"CONFORMANCE_GOPROG=" + goProg,
		"CONFORMANCE_SCRATCH=" + scratch,
	}
	// A bare run leaves no audit log: nothing reads its path.
	o := outcome{auditLog: filepath.Join(f.base, p.name, how+".audit.jsonl")}
	argv, after := launch(t, runSetup{
		id:       p.name + "-" + how,
		dir:      dir,
		env:      env,
		argv:     []string{"bash", filepath.Join(dataDir, "cases", p.name+".sh")},
		auditLog: o.auditLog,
		scratch:  scratch,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// On a hang: where every process of the run is stuck, then SIGABRT,
	// which vigil does not forward, so it prints its goroutines and exits
	// (its watchee dies with it); a bare run just ends. SIGKILL after a
	// grace period.
	var stuck string
	cmd.Cancel = func() error {
		stuck = hangStacks(cmd.Process.Pid)
		return cmd.Process.Signal(syscall.SIGABRT)
	}
	cmd.WaitDelay = 10 * time.Second
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	o.took = time.Since(start)
	if after != nil {
		o.vigilLines = after()
	}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %s: did not finish in 5 minutes (hang?)\nstdout:\n%s\nstderr:\n%s\nprocesses:\n%s", p.name, how, stdout.String(), stderr.String(), stuck)
	case errors.As(err, &ee):
		o.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			o.code = 128 + int(ws.Signal())
		}
	case err != nil:
		t.Fatalf("%s %s: %v", p.name, how, err)
	}
	opts := p.tree
	opts.replace = []replacement{{dir, "$RUN"}, {scratch, "$SCRATCH"}}
	norm := func(s string) string { return string(opts.normalise([]byte(s))) }
	o.stdout = norm(stdout.String())
	var own []string
	o.stderr, own = splitVigilLines(norm(stderr.String()))
	o.vigilLines = append(o.vigilLines, own...)
	o.tree, err = snapshot(dir, &opts)
	if err != nil {
		t.Fatalf("%s %s: reading the tree: %v", p.name, how, err)
	}
	return o
}

// splitVigilLines takes vigil's own diagnostics (JSON log lines with a
// level and a message; the watchee's records go to --log) out of stderr:
// they are not the program's output.
func splitVigilLines(stderr string) (rest string, vigil []string) {
	var b strings.Builder
	for _, l := range strings.SplitAfter(stderr, "\n") {
		var m map[string]any
		if strings.HasPrefix(l, `{"level":`) && json.Unmarshal([]byte(l), &m) == nil && m["message"] != nil {
			vigil = append(vigil, strings.TrimSpace(l))
			continue
		}
		b.WriteString(l)
	}
	return b.String(), vigil
}

// TestConformance runs every program bare and under each policy and
// compares what they did.
func TestConformance(t *testing.T) {
	testenv.RequirePrivileged(t)
	f := newFixture(t)
	for _, p := range programs {
		t.Run(p.name, func(t *testing.T) {
			for _, n := range p.needs {
				if _, err := exec.LookPath(n); err != nil {
					t.Fatalf("%s needs %s (scripts/deps.sh installs it): %v", p.name, n, err)
				}
			}
			want := f.run(t, p, "bare", nil)
			t.Logf("bare: exit %d, %v", want.code, want.took.Round(time.Millisecond))
			for _, pc := range policyCases {
				t.Run(pc.name, func(t *testing.T) {
					got := f.run(t, p, pc.name, &pc)
					if interruptedBeforeReceive(want, got) && !vigilAnsweredEINTR(t, got) {
						t.Logf("under vigil a call failed with EINTR where the bare run had none: %s; running it again", interruptedLine(got.stderr))
						got = f.run(t, p, pc.name+"-again", &pc)
					}
					compare(t, p, pc, want, got)
				})
			}
		})
	}
}

// eintrText is strerror(EINTR) as glibc and busybox print it.
const eintrText = "Interrupted system call"

// interruptedBeforeReceive reports whether the run under vigil printed an
// EINTR the bare run did not. A signal that reaches a watchee before vigil
// has received its trapped call ends the wait in the kernel with
// ERESTARTSYS, which a handler installed without SA_RESTART turns into
// EINTR even for a fork or an open of a regular file (README, Known
// differences): no supervisor sees that call, so it is the platform's, and
// a loaded machine (a shell's SIGCHLD handler, busybox sh's "can't fork")
// meets it now and then. Such a run is repeated once; the repetition must
// match the bare run like any other.
func interruptedBeforeReceive(bare, vigil outcome) bool {
	return strings.Contains(vigil.stderr, eintrText) && !strings.Contains(bare.stderr, eintrText)
}

// vigilAnsweredEINTR reports whether vigil itself answered a call with
// EINTR (or ERESTARTSYS, which becomes EINTR under such a handler): then
// the EINTR may be vigil's doing, and the run is compared as it is.
func vigilAnsweredEINTR(t *testing.T, o outcome) bool {
	t.Helper()
	st, err := readAudit(o.auditLog)
	if err != nil {
		t.Fatalf("reading the audit log: %v", err)
	}
	return slices.ContainsFunc(st.failed, func(r failedRecord) bool { return r.errno == "EINTR" || r.errno == "ERESTARTSYS" })
}

// interruptedLine is the first line of stderr that reports EINTR.
func interruptedLine(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, eintrText) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// compare fails t with every difference between the bare run and the run
// under vigil, and the audit records that may explain them.
func compare(t *testing.T, p program, pc policyCase, want, got outcome) {
	t.Helper()
	st, err := readAudit(got.auditLog)
	if err != nil {
		t.Fatalf("reading the audit log: %v", err)
	}
	t.Logf("under vigil: exit %d, %v (bare %v); %d audit records, %d emulated, %d bound",
		got.code, got.took.Round(time.Millisecond), want.took.Round(time.Millisecond), st.records, st.emulated, st.bound)
	var diffs []string
	if want.code != got.code {
		diffs = append(diffs, fmt.Sprintf("exit status: bare %d, under vigil %d", want.code, got.code))
	}
	if d := lineDiff(want.stdout, got.stdout); d != "" {
		diffs = append(diffs, "stdout (- bare, + vigil):\n"+d)
	}
	if d := lineDiff(want.stderr, got.stderr); d != "" {
		diffs = append(diffs, "stderr (- bare, + vigil):\n"+d)
	}
	if d := diffTrees(want.tree, got.tree); d != "" {
		diffs = append(diffs, "file tree (- bare, + vigil):\n"+d)
	}
	for _, l := range got.vigilLines {
		if strings.Contains(l, `"level":"error"`) {
			diffs = append(diffs, "vigil logged an error: "+l)
		}
	}
	// Every program writes files: a run without one emulated call did not
	// exercise what the policy is there for.
	if st.emulated == 0 {
		diffs = append(diffs, "no emulated call in the audit log: the policy did not take effect")
	}
	if len(diffs) == 0 {
		return
	}
	kept := keepLog(t, p, pc, got.auditLog)
	msg := fmt.Sprintf("%s under vigil (%s policy) differs from the bare run:\n\n%s\n", p.name, pc.name, strings.Join(diffs, "\n"))
	if len(got.vigilLines) > 0 {
		msg += "\nvigil's own log lines (taken out of stderr):\n" + strings.Join(limit(got.vigilLines, 10), "\n") + "\n"
	}
	msg += "\naudit records that refused or failed a call (most telling first):\n" + strings.Join(st.telling(strings.Join(diffs, "\n")), "\n")
	msg += fmt.Sprintf("\n\nfull audit log: %s", kept)
	t.Error(msg)
}

func limit(l []string, n int) []string {
	if len(l) > n {
		return append(l[:n:n], fmt.Sprintf("... and %d more", len(l)-n))
	}
	return l
}

// keepLog copies a failed run's audit log out of the test's temporary
// directory, so it can be read after the test.
func keepLog(t *testing.T, p program, pc policyCase, log string) string {
	dir := filepath.Join(os.TempDir(), "vigil-conformance-logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return log + " (removed with the test's directory: " + err.Error() + ")"
	}
	dst := filepath.Join(dir, p.name+"-"+pc.name+".jsonl")
	in, err := os.Open(log)
	if err != nil {
		return err.Error()
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err.Error()
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		return err.Error()
	}
	return dst
}

// auditStats summarises one run's audit log.
type auditStats struct {
	records, emulated, bound int
	// failed are the records of calls vigil answered with an error,
	// deduplicated by what they show.
	failed []failedRecord
}

type failedRecord struct {
	line  string
	errno string
	path  string
}

func readAudit(path string) (auditStats, error) {
	var st auditStats
	f, err := os.Open(path)
	if err != nil {
		return st, err
	}
	defer f.Close()
	seen := map[string]bool{}
	rd := audit.NewReader(f)
	for rd.Next() {
		r := rd.Record()
		st.records++
		if r.Emulated {
			st.emulated++
		}
		if r.Verified == audit.VerifiedKernel {
			st.bound++
		}
		if r.Errno == "" && !r.Withdrawn && r.Verified != audit.VerifiedMismatch {
			continue
		}
		line := r.String()
		if r.Withdrawn && r.Errno == "" {
			r.Errno = "withdrawn"
		}
		p := r.Args.Path
		key := fmt.Sprint(r.Syscall, p, r.Errno, r.Rule, r.Withdrawn)
		if seen[key] {
			continue
		}
		seen[key] = true
		st.failed = append(st.failed, failedRecord{line: line, errno: r.Errno, path: p})
	}
	return st, rd.Err()
}

// ordinaryErrnos are what the kernel answers for calls on missing or
// existing names; a record with another errno (EPERM, EACCES, EBADF,
// ESRCH, EINPROGRESS...) is more likely vigil's own doing.
var ordinaryErrnos = map[string]bool{"ENOENT": true, "ENOTDIR": true, "EEXIST": true, "ENOTEMPTY": true, "EISDIR": true, "ELOOP": true}

// telling orders the failed records for a reader: unusual errnos first
// (vigil's refusals, withdrawn calls), then records naming a file the diff
// names, then the rest.
func (st auditStats) telling(diff string) []string {
	score := func(r failedRecord) int {
		s := 0
		if !ordinaryErrnos[r.errno] {
			s += 2
		}
		if r.path != "" && strings.Contains(diff, filepath.Base(r.path)) {
			s++
		}
		return s
	}
	rs := append([]failedRecord(nil), st.failed...)
	sort.SliceStable(rs, func(i, j int) bool { return score(rs[i]) > score(rs[j]) })
	var out []string
	for _, r := range rs {
		if len(out) == 25 {
			out = append(out, fmt.Sprintf("... %d more distinct records with an errno", len(rs)-25))
			break
		}
		out = append(out, r.line)
	}
	if len(out) == 0 {
		out = append(out, "(none)")
	}
	return out
}

// hangStacks returns testenv.ThreadStacks of pid and of each of its
// descendants.
func hangStacks(pid int) string {
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var p int
		if _, err := fmt.Sscan(e.Name(), &p); err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		// comm may hold spaces and parentheses: the fields follow the last ')'.
		rest := string(b[bytes.LastIndexByte(b, ')')+1:])
		var state string
		var ppid int
		if _, err := fmt.Sscan(rest, &state, &ppid); err == nil {
			parent[p] = ppid
		}
	}
	var out strings.Builder
	tree := []int{pid}
	for i := 0; i < len(tree); i++ {
		for p, pp := range parent {
			if pp == tree[i] {
				tree = append(tree, p)
			}
		}
	}
	for _, p := range tree {
		fmt.Fprintf(&out, "pid %d:\n%s", p, testenv.ThreadStacks(p))
	}
	return out.String()
}

// interruptedBeforeReceive repeats a run only for an EINTR the bare run did
// not print: any other difference, and an EINTR both runs printed, are
// compared as they are.
func TestOnlyAnEINTRTheBareRunLacksIsRunAgain(t *testing.T) {
	fork := "/bin/sh: can't fork: Interrupted system call\n"
	for _, c := range []struct {
		bare, vigil string
		want        bool
	}{
		{"", fork, true},
		{fork, fork, false},
		{"", "cat: x: Permission denied\n", false},
		{"", "", false},
	} {
		if got := interruptedBeforeReceive(outcome{stderr: c.bare}, outcome{stderr: c.vigil}); got != c.want {
			t.Errorf("bare %q, vigil %q: %v, want %v", c.bare, c.vigil, got, c.want)
		}
	}
	if got := interruptedLine("a\n" + fork + "b\n"); got != strings.TrimSpace(fork) {
		t.Errorf("interruptedLine = %q", got)
	}
}
