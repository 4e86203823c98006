package observe

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/launch"
	"github.com/vigilsec/vigil/enforcer/reexec"
	"github.com/vigilsec/vigil/enforcer/testenv"
	"github.com/vigilsec/vigil/loader"
)

func TestMain(m *testing.M) {
	reexec.Run(launch.InitRole())
	os.Exit(m.Run())
}

// run is one observation: the records, the counters, the programs' drop
// counters and the command's stdout.
type run struct {
	recs     []audit.Record
	stats    Stats
	counters loader.ObsCounters
	stdout   string
}

// observeRun observes argv from its first instruction to its exit through
// the same wiring as the CLI, with the default syscalls, and checks what
// every observation must hold: nothing dropped, every record valid JSON
// with pid, tid, comm and syscall, and an error field on any record missing
// a part.
func observeRun(t *testing.T, dir string, argv ...string) run {
	t.Helper()
	var out testenv.Buffer
	r := observeTo(t, &out, dir, argv...)
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m, err := audit.ParseRecord(sc.Bytes())
		if err != nil {
			t.Fatalf("not an audit record: %v", err)
		}
		if m.Pid == 0 || m.Tid == 0 || m.Comm == "" || m.Syscall == "" || m.Time.IsZero() {
			t.Errorf("record without pid, tid, comm, syscall or time: %s", sc.Text())
		}
		if m.Args.Path == "" && m.CaptureError == "" && strings.HasPrefix(m.Syscall, "open") {
			t.Errorf("open without a path and without an error: %s", sc.Text())
		}
		r.recs = append(r.recs, m)
	}
	if uint64(len(r.recs)) != r.stats.Events {
		t.Errorf("%d records written, %d counted", len(r.recs), r.stats.Events)
	}
	return r
}

// observeTo is observeRun writing the records to out.
func observeTo(t *testing.T, out io.Writer, dir string, argv ...string) run {
	t.Helper()
	testenv.RequirePrivileged(t)
	nrs, err := Numbers(DefaultSyscalls)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := New(Config{Out: out, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Close()
	ld, err := loader.LoadObserver(loader.ObserverOptions{Syscalls: nrs, Log: zerolog.Nop()})
	if err != nil {
		t.Fatalf("loading eBPF: %v", err)
	}
	defer ld.Close()
	done := make(chan error, 1)
	go func() { done <- obs.Run(ld) }()
	path, err := exec.LookPath(argv[0])
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	stderr, err := os.Create(filepath.Join(tmp, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	stdout, err := os.Create(filepath.Join(tmp, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	w, err := launch.Start(launch.Config{Path: path, Args: argv, Env: os.Environ(), Dir: dir, Stdout: stdout, Stderr: stderr})
	if err != nil {
		t.Fatal(err)
	}
	if err := ld.Watch(w.Pid()); err != nil {
		w.Abort()
		t.Fatal(err)
	}
	if err := w.Proceed(); err != nil {
		t.Fatal(err)
	}
	code, err := w.Wait()
	if err != nil || code != 0 {
		b, _ := os.ReadFile(stderr.Name())
		t.Fatalf("%v: exit %d, %v\n%s", argv, code, err, b)
	}
	if err := ld.Sync(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	counters, err := ld.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if err := ld.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := obs.Err(); err != nil {
		t.Fatal(err)
	}
	if counters != (loader.ObsCounters{}) || ld.Skipped() != 0 {
		t.Errorf("dropped: %+v, %d undecodable", counters, ld.Skipped())
	}
	b, err := os.ReadFile(stdout.Name())
	if err != nil {
		t.Fatal(err)
	}
	return run{stats: obs.Stats(), counters: counters, stdout: string(b)}
}

func TestObserveShowsTheKernelsObject(t *testing.T) {
	r := observeRun(t, "", "sh", "-c", "cat /etc/hostname > /dev/null")
	found := false
	for _, rec := range r.recs {
		if rec.Phantom {
			t.Errorf("phantom flagged without any race: %+v", rec)
		}
		if rec.Syscall != "openat" || rec.Args.Path != "/etc/hostname" {
			continue
		}
		k := rec.Kernel
		real, _ := filepath.EvalSymlinks("/etc/hostname")
		if k == nil || k.Path != real {
			t.Fatalf("openat /etc/hostname: kernel view %v, want path %s", k, real)
		}
		found = true
	}
	if !found {
		t.Fatalf("no openat of /etc/hostname among %d records", len(r.recs))
	}
	execs := 0
	for _, rec := range r.recs {
		if rec.Syscall == "execve" {
			execs++
		}
	}
	if execs < 2 {
		t.Fatalf("want the execs of sh and cat observed, got %d", execs)
	}
}

// raceRuns bounds the runs a phantom race gets to land once: each run stops
// the loop as soon as one did, so only a failing test pays them all (12 ran
// out once on a loaded CI machine for execflip).
const raceRuns = 40

// TestObserveFlagsPhantoms runs the flip and symlink-swap races unsupervised:
// some opens use another file than the argument names when observe looks at
// it, and observe must flag them. execflip races an execve's filename.
func TestObserveFlagsPhantoms(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	dir := t.TempDir()
	for p, c := range map[string]string{"A": "ALLOWED\n", "D": "DENIED\n", "name": "ALLOWED\n"} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "D"), filepath.Join(dir, "other")); err != nil {
		t.Fatal(err)
	}
	// execflip: the allowed program prints nothing, the denied one echoes.
	for name, src := range map[string]string{"X": "/bin/true", "Y": "/bin/echo"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("flip", func(t *testing.T) {
		// A discrepancy needs the writer to land between sys_enter's copy
		// and the kernel's, a window of a few microseconds: on a busy
		// machine a run can have none, so race again, a bounded number of
		// times. Every discrepancy (the sys_enter copy names the other file
		// than the kernel opened) must be flagged, and nothing else.
		a, d := filepath.Join(dir, "A"), filepath.Join(dir, "D")
		discrepancies := 0
		for run := 0; run < raceRuns && discrepancies == 0; run++ {
			for _, r := range observeRun(t, "", probe, "flip", a, d, "3000", "2").recs {
				kernel := r.Kernel
				if r.Syscall != "openat" || kernel == nil || (r.Args.Path != a && r.Args.Path != d) {
					continue
				}
				differ := filepath.Base(r.Args.Path) != filepath.Base(kernel.Path)
				if differ {
					discrepancies++
				}
				if differ != r.Phantom {
					t.Errorf("phantom %v for argument %v and kernel object %v", r.Phantom, r.Args.Path, kernel.Path)
				}
			}
		}
		if discrepancies == 0 {
			t.Fatalf("flip race: the writer never landed between sys_enter and the kernel's copy in %d runs", raceRuns)
		}
	})
	for _, tc := range []struct {
		name string
		argv []string
	}{
		{"swap", []string{probe, "swap", dir, "3000", "2"}},
		// The exec check compares the kernel's own copy of the filename.
		{"execflip", []string{probe, "execflip", filepath.Join(dir, "X"), filepath.Join(dir, "Y"), "100"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			phantoms := 0
			for run := 0; run < raceRuns && phantoms == 0; run++ {
				for _, r := range observeRun(t, "", tc.argv...).recs {
					if r.Phantom {
						phantoms++
					}
				}
			}
			if phantoms == 0 {
				t.Fatalf("%s race: no event flagged phantom in %d runs", tc.name, raceRuns)
			}
		})
	}
}

// writeFiles creates files (name -> contents) under dir; a value starting
// with "->" makes a symlink to the rest.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, c := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(c, "->"); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(c), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// reuseTree is the tree testdata/reuse.c works in: two directories, each
// with a file and a symlink to the other.
func reuseTree(t *testing.T) string {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a/f": "a\n", "b/f": "b\n", "a/l": "->../b", "b/l": "->../b"})
	return dir
}

func buildReuse(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "reuse")
	out, err := exec.Command("gcc", "-O2", "-Wall", "-pthread", "-o", bin, "testdata/reuse.c").CombinedOutput()
	if err != nil {
		t.Fatalf("building testdata/reuse.c: %v\n%s", err, out)
	}
	return bin
}

// TestObserveNoPhantomsOnBenignWorkloads observes programs that reuse
// descriptor numbers, change directories and roots, and walk, archive,
// build and delete trees. None of them races its own lookups, so not one
// call may be flagged; each must still have been checked (the floor says
// how many calls at least had their object compared).
func TestObserveNoPhantomsOnBenignWorkloads(t *testing.T) {
	testenv.RequirePrivileged(t)
	reuse := buildReuse(t)
	for _, tc := range []struct {
		name string
		// setup prepares a directory and returns the command to observe
		// there.
		setup func(t *testing.T) (dir string, argv []string)
		// checked is the least number of calls whose object was compared
		// (Literal + Resolved); resolved the least that needed a lookup
		// repeated from the captured start.
		checked, resolved uint64
	}{
		{"find", func(t *testing.T) (string, []string) {
			return "", []string{"find", "/usr", "-xdev"}
		}, 1000, 0},
		{"tar", func(t *testing.T) (string, []string) {
			dir := t.TempDir()
			return dir, []string{"sh", "-c", "tar -C /usr/share/zoneinfo -cf z.tar . && mkdir x && tar -C x -xf z.tar && tar -C x -df z.tar"}
		}, 1000, 0},
		{"git", func(t *testing.T) (string, []string) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"a/b/c.txt": "c\n", "d.txt": "d\n", "link": "->a/b", "e/f/g.txt": "g\n"})
			git := "git -c user.name=t -c user.email=t@example.com "
			cmd := exec.Command("sh", "-c", "git init -q && "+git+"add -A && "+git+"commit -qm init && echo x >> d.txt")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("preparing a git repository: %v\n%s", err, out)
			}
			return dir, []string{"git", "status", "--porcelain"}
		}, 10, 0},
		{"make-j2", func(t *testing.T) (string, []string) {
			dir := t.TempDir()
			files := map[string]string{"include/common.h": "int twice(int);\n"}
			var objs []string
			for i := range 6 {
				files[fmt.Sprintf("src/m%d.c", i)] = fmt.Sprintf("#include \"../include/common.h\"\nint f%d(void) { return twice(%d); }\n", i, i)
				objs = append(objs, fmt.Sprintf("src/m%d.o", i))
			}
			files["src/main.c"] = "#include <stdio.h>\n#include \"common.h\"\nint twice(int x) { return 2 * x; }\nint main(void) { printf(\"%d\\n\", twice(2)); return 0; }\n"
			files["Makefile"] = "CFLAGS = -O1 -Iinclude\nprog: src/main.o " + strings.Join(objs, " ") + "\n\t$(CC) -o $@ $^\n"
			writeFiles(t, dir, files)
			return dir, []string{"make", "-s", "-j2"}
		}, 100, 10},
		{"rm-deep", func(t *testing.T) (string, []string) {
			dir := t.TempDir()
			p := filepath.Join(dir, "tree")
			for i := range 120 {
				p = filepath.Join(p, fmt.Sprintf("d%d", i))
				if i%10 == 0 {
					writeFiles(t, p, map[string]string{"f": "x", "g": "y"})
				}
			}
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			return dir, []string{"rm", "-rf", "tree"}
		}, 100, 0},
		{"fd-reuse", func(t *testing.T) (string, []string) {
			return "", []string{reuse, "fds", reuseTree(t), "4", "2000"}
		}, 20000, 5000},
		{"chdir", func(t *testing.T) (string, []string) {
			return "", []string{reuse, "chdir", reuseTree(t), "500"}
		}, 1000, 500},
		{"chroot", func(t *testing.T) (string, []string) {
			return "", []string{reuse, "chroot", reuseTree(t)}
		}, 4, 0},
		// The name gets a new file right after each open: a repeated
		// lookup finds another object, which is not the kernel's fault.
		{"replace", func(t *testing.T) (string, []string) {
			return "", []string{reuse, "replace", reuseTree(t), "2000"}
		}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, argv := tc.setup(t)
			r := observeRun(t, dir, argv...)
			for _, rec := range r.recs {
				if rec.Phantom {
					t.Errorf("phantom flagged: %+v", rec)
				}
			}
			s := r.stats
			t.Logf("%d calls: %d literal, %d resolved, %d unchecked", s.Events, s.Literal, s.Resolved, s.Unchecked)
			if s.Literal+s.Resolved < tc.checked || s.Resolved < tc.resolved {
				t.Errorf("only %d calls checked (%d resolved), want at least %d (%d)", s.Literal+s.Resolved, s.Resolved, tc.checked, tc.resolved)
			}
		})
	}
}

// TestObserveLosesNothingFromABusyThread has one watchee thread open and
// close a file as fast as it can for ten seconds, observed at the default
// buffer size with the records encoded as the CLI does: every open must be
// recorded, none lost.
func TestObserveLosesNothingFromABusyThread(t *testing.T) {
	testenv.RequirePrivileged(t)
	bin := filepath.Join(t.TempDir(), "openloop")
	if out, err := exec.Command("gcc", "-O2", "-Wall", "-o", bin, "testdata/openloop.c").CombinedOutput(); err != nil {
		t.Fatalf("building testdata/openloop.c: %v\n%s", err, out)
	}
	target := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(target, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := observeTo(t, io.Discard, "", bin, "10", target)
	var opens uint64
	if _, err := fmt.Sscanf(r.stdout, "ok %d", &opens); err != nil {
		t.Fatalf("openloop printed %q", r.stdout)
	}
	if r.counters.Lost != 0 {
		t.Fatalf("%d records lost out of %d opens", r.counters.Lost, opens)
	}
	// The dynamic loader's opens come on top of the loop's.
	if r.stats.Events < opens {
		t.Fatalf("%d opens, %d records", opens, r.stats.Events)
	}
	t.Logf("%d opens in 10s, %d records, reader sustains %.0f records/s", opens, r.stats.Events, r.stats.Rate())
}

// TestObserveMarksWhatItCouldNotRead: calls whose path pointer is bad or
// whose dirfd holds nothing are recorded with the kernel's error and an
// error field saying what observe could not read.
func TestObserveMarksWhatItCouldNotRead(t *testing.T) {
	testenv.RequirePrivileged(t)
	r := observeRun(t, "", buildReuse(t), "badargs")
	want := map[string]string{"EFAULT": "path argument unreadable", "EBADF": "lookup start (dirfd) unreadable at sys_enter"}
	seen := map[string]int{}
	for _, rec := range r.recs {
		errno := rec.Errno
		if w, ok := want[errno]; ok && rec.Syscall == "openat" {
			if rec.CaptureError != w {
				t.Errorf("openat failing with %s: error %q, want %q", errno, rec.CaptureError, w)
			}
			seen[errno]++
		}
	}
	if seen["EFAULT"] != 2 || seen["EBADF"] != 1 {
		t.Fatalf("want two EFAULT and one EBADF openat, got %v", seen)
	}
	if r.stats.Incomplete < 3 {
		t.Errorf("%d incomplete records counted, want at least 3", r.stats.Incomplete)
	}
}
