package loader

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/testenv"
)

// getpidLoop makes n (a decimal string) getpid calls and returns the CPU
// time they took on this thread in nanoseconds: the tracepoints run in the
// calling thread's context, and CPU time is what a loaded machine leaves
// comparable (wall time mostly measures the waits for a CPU).
func getpidLoop(n string) (uintptr, error) {
	count, err := strconv.Atoi(n)
	if err != nil {
		return 0, err
	}
	start := threadCPU()
	for i := 0; i < count; i++ {
		unix.Getpid()
	}
	return uintptr(threadCPU() - start), nil
}

// threadCPU is the calling thread's CPU time in nanoseconds.
func threadCPU() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

// BenchmarkTracepointTax measures what the raw tracepoints cost a syscall
// that no binding concerns: getpid(2) in a child process, with the programs
// not attached, attached but the child unwatched (every other process of the
// host, with or without a seccomp filter of its own), and attached with the
// child watched (a watchee's untrapped calls; a watchee has a filter, so
// compare with detached-filtered).
// child-cpu-ns/op is the CPU time the child's thread spent per call, so
// start-up and waits for a CPU are left out. Compare the cases of one run,
// over -count runs.
func BenchmarkTracepointTax(b *testing.B) {
	testenv.RequirePrivileged(b)
	b.Run("detached", func(b *testing.B) { timeGetpid(b, nil, false, false) })
	b.Run("detached-filtered", func(b *testing.B) { timeGetpid(b, nil, false, true) })
	l, err := Load(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	// The programs' own run time per run (enter-ns/run, exit-ns/run), over
	// every syscall of the host while the child runs: the dispatch into a
	// raw tracepoint costs the same before and after a change to them.
	if stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME)); err == nil {
		defer stats.Close()
	}
	b.Run("attached-unwatched", func(b *testing.B) { timeGetpid(b, l, false, false) })
	b.Run("attached-unwatched-filtered", func(b *testing.B) { timeGetpid(b, l, false, true) })
	b.Run("attached-watched-filtered", func(b *testing.B) { timeGetpid(b, l, true, true) })
}

// timeGetpid runs b.N getpid calls in a helper child, watched by l when
// watch is set, under an allow-all seccomp filter when filter is (a
// watchee has one), and reports the child's CPU ns per call.
func timeGetpid(b *testing.B, l *Loader, watch, filter bool) {
	relR, relW, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelper+"=getpid", envArg+"="+strconv.Itoa(b.N))
	if filter {
		cmd.Env = append(cmd.Env, envFilter+"=1")
	}
	cmd.ExtraFiles = []*os.File{relR, repW}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	relR.Close()
	repW.Close()
	defer relW.Close()
	defer repR.Close()
	defer cmd.Wait()
	if watch {
		if err := l.Watch(cmd.Process.Pid); err != nil {
			cmd.Process.Kill()
			b.Fatal(err)
		}
	}
	sc := bufio.NewScanner(repR)
	if !sc.Scan() { // the helper's tid: it is ready
		cmd.Process.Kill()
		b.Fatal("helper did not report its tid")
	}
	var enter, exit progRuns
	if l != nil {
		enter.start(l.objs.VigilSysEnter)
		exit.start(l.objs.VigilSysExit)
	}
	b.ResetTimer()
	if _, err := relW.Write([]byte{1}); err != nil {
		b.Fatal(err)
	}
	if !sc.Scan() {
		b.Fatal("helper did not report")
	}
	b.StopTimer()
	enter.report(b, "enter-ns/run")
	exit.report(b, "exit-ns/run")
	var ns int64
	if _, err := fmt.Sscanf(sc.Text(), "ok %d", &ns); err != nil || !strings.HasPrefix(sc.Text(), "ok ") {
		b.Fatalf("helper said %q", sc.Text())
	}
	b.ReportMetric(float64(ns)/float64(b.N), "child-cpu-ns/op")
}

// BenchmarkBindUnbind is a binding written and withdrawn again (the
// CONTINUE could not be sent): BenchmarkBind plus what Unbind costs.
func BenchmarkBindUnbind(b *testing.B) {
	testenv.RequirePrivileged(b)
	l, err := Load(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	bind := &Binding{Nr: unix.SYS_OPENAT, Kind: BindFile, ArgIndex: 1, Arg: []byte("/etc/hostname"), Dev: unix.Mkdev(254, 0), Ino: 1234}
	const tid = 0x3ffffff1 // above pid_max: the binding is never checked
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	for b.Loop() {
		if err := l.Bind(tid, bind); err != nil {
			b.Fatal(err)
		}
		if err := l.Unbind(tid); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(threadCPU()-start)/float64(b.N), "cpu-ns/op")
}

// progRuns measures a program's run time per run between start and report,
// when run-time statistics are enabled.
type progRuns struct {
	prog  *ebpf.Program
	first *ebpf.ProgramStats
}

func (p *progRuns) start(prog *ebpf.Program) {
	p.prog = prog
	if st, err := prog.Stats(); err == nil {
		p.first = st
	}
}

func (p *progRuns) report(b *testing.B, unit string) {
	if p.first == nil {
		return
	}
	st, err := p.prog.Stats()
	if err != nil || st.RunCount <= p.first.RunCount {
		return
	}
	b.ReportMetric(float64(st.Runtime-p.first.Runtime)/float64(st.RunCount-p.first.RunCount), unit)
}
