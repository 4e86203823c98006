// Package observe is vigil's eBPF-only mode: no seccomp, no decisions. It
// streams one JSON event per syscall of the watched processes with the
// pointer arguments as user memory held them at sys_enter and the object the
// kernel actually used at sys_exit, and flags the events where the two
// disagree ("phantom": a racing rewrite of the argument or a symlink swap,
// the attack that beat Falco and Tracee).
package observe

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/args"
	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/procinfo"
	"github.com/vigilsec/vigil/enforcer/resolve"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
	"github.com/vigilsec/vigil/loader"
)

// DefaultSyscalls are observed when no list is given: the calls whose
// pointer arguments name files, programs and peers.
var DefaultSyscalls = []string{"open", "openat", "openat2", "creat", "execve", "execveat", "connect"}

// Source is what observe reads events from (package loader).
type Source interface {
	ReadEvents(fn func(*loader.Event)) error
	Lost() (uint64, error)
}

// Observer turns kernel events into observe records.
type Observer struct {
	out      zerolog.Logger
	log      zerolog.Logger
	procs    *procinfo.Cache
	resolver *resolve.Resolver
	// enters holds each thread's sys_enter until its sys_exit arrives.
	enters map[int]loader.Event
	mu     sync.Mutex
	stats  Stats
}

// Stats counts what an Observer saw.
type Stats struct {
	Events, Phantoms, Unpaired uint64
}

// New returns an Observer writing records to out and diagnostics to log.
func New(out, log zerolog.Logger) (*Observer, error) {
	r, err := resolve.New()
	if err != nil {
		return nil, fmt.Errorf("creating resolver: %w", err)
	}
	return &Observer{out: out, log: log, procs: procinfo.New(), resolver: r, enters: make(map[int]loader.Event)}, nil
}

// Numbers converts syscall names to numbers, rejecting unknown names.
func Numbers(names []string) ([]int, error) {
	nrs := make([]int, 0, len(names))
	for _, n := range names {
		nr, ok := sysinfo.Number(n)
		if !ok {
			return nil, fmt.Errorf("unknown syscall %q", n)
		}
		nrs = append(nrs, nr)
	}
	sort.Ints(nrs)
	return nrs, nil
}

// Run reads events from src until it ends (the loader was closed).
func (o *Observer) Run(src Source) error {
	return src.ReadEvents(o.Handle)
}

// Drain waits until no new event has arrived for two reader poll intervals
// (bounded by max), so events still in the ring buffer are not cut off when
// the caller closes the loader. Captured events that are not bound wake the
// reader only in batches or on its poll timer.
func (o *Observer) Drain(max time.Duration) {
	const step = loader.PollInterval + loader.PollInterval/2
	deadline := time.Now().Add(max)
	last, quiet := o.Stats().Events, 0
	for quiet < 2 && time.Now().Before(deadline) {
		time.Sleep(step)
		now := o.Stats().Events
		if now == last {
			quiet++
		} else {
			last, quiet = now, 0
		}
	}
}

// Stats returns the counters.
func (o *Observer) Stats() Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stats
}

// Handle consumes one kernel event.
func (o *Observer) Handle(ev *loader.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch ev.Type {
	case loader.EventEnter:
		if old, ok := o.enters[ev.Tid]; ok {
			// An enter without exit: the call never returned (exec, exit).
			o.emit(&old, nil)
		}
		o.enters[ev.Tid] = ev.Clone()
	case loader.EventExit:
		enter, ok := o.enters[ev.Tid]
		if ok && enter.Nr == ev.Nr {
			delete(o.enters, ev.Tid)
			o.emit(&enter, ev)
			return
		}
		o.stats.Unpaired++
		o.emit(nil, ev)
	case loader.EventViolation:
		o.log.Error().Int(audit.FieldPid, ev.Tgid).Int(audit.FieldTid, ev.Tid).
			Str(audit.FieldSyscall, sysinfo.Name(ev.Nr)).Str("reason", ev.Reason.String()).Msg("binding violated")
	}
}

// emit writes one record from an enter and/or exit event.
func (o *Observer) emit(enter, exit *loader.Event) {
	ref := exit
	if ref == nil {
		ref = enter
	}
	o.stats.Events++
	pi := o.procs.Get(ref.Tid)
	phantom, why := false, ""
	if enter != nil && exit != nil {
		phantom, why = o.phantom(enter, exit)
	}
	var ev *zerolog.Event
	if phantom {
		o.stats.Phantoms++
		ev = o.out.Warn()
	} else {
		ev = o.out.Info()
	}
	ev = ev.Int(audit.FieldPid, ref.Tgid).Int(audit.FieldTid, ref.Tid).Str(audit.FieldComm, pi.Comm).
		Str(audit.FieldSyscall, sysinfo.Name(ref.Nr))
	if enter != nil {
		ev = ev.Dict(audit.FieldArgs, argsDict(enter))
	}
	if exit != nil {
		ev = ev.Int64("ret", exit.Ret)
		if exit.Ret < 0 && exit.Ret > -4096 {
			ev = ev.Str(audit.FieldErrno, unix.ErrnoName(unix.Errno(-exit.Ret)))
		}
		if exit.Flags.Has(loader.FlagHasObject) {
			k := zerolog.Dict().Str("path", exit.KPath).
				Str("dev", strconv.FormatUint(uint64(unix.Major(exit.Dev)), 10)+":"+strconv.FormatUint(uint64(unix.Minor(exit.Dev)), 10)).
				Uint64("ino", exit.Ino)
			if exit.Flags.Has(loader.FlagKPathTrunc) {
				k = k.Bool("path_truncated", true)
			}
			ev = ev.Dict(audit.FieldKernel, k)
		}
		if enter != nil && exit.Time >= enter.Time {
			ev = ev.Float64(audit.FieldLatency, float64(exit.Time-enter.Time)/1e3)
		}
	}
	ev = ev.Bool("phantom", phantom)
	if why != "" {
		ev = ev.Str("phantom_reason", why)
	}
	ev.Send()
}

func argsDict(e *loader.Event) *zerolog.Event {
	d := zerolog.Dict()
	sc, ok := sysinfo.ByNr(e.Nr)
	if e.Path != "" || (ok && len(sc.PathArgs()) > 0) {
		d = d.Str(audit.ArgPath, e.Path)
		if e.Flags.Has(loader.FlagPathTrunc) {
			d = d.Bool("path_truncated", true)
		}
	}
	if !ok {
		return d
	}
	if i := sc.ArgIndex(sysinfo.ArgDirfd); i >= 0 && int32(e.Args[i]) != unix.AT_FDCWD {
		d = d.Int(audit.ArgDirfd, int(int32(e.Args[i])))
	}
	if i := sc.ArgIndex(sysinfo.ArgOpenFlags); i >= 0 {
		d = d.Str(audit.ArgFlags, args.FormatOpenFlags(uint64(uint32(e.Args[i]))))
	}
	return d
}

// phantom reports whether the object the kernel used differs from the one
// the sys_enter copy of the path names now, in the caller's view. A racing
// rewrite after sys_enter read the argument, or a symlink swapped between
// the kernel's lookup and ours, both show up as a different inode. Only
// successful open-family calls with an absolute path or a live thread are
// judged; anything that cannot be resolved is not flagged.
func (o *Observer) phantom(enter, exit *loader.Event) (bool, string) {
	if exit.Ret < 0 || !exit.Flags.Has(loader.FlagHasObject) || enter.Flags.Has(loader.FlagPathTrunc) || enter.Path == "" {
		return false, ""
	}
	sc, ok := sysinfo.ByNr(enter.Nr)
	if !ok || sc.Flags != sysinfo.FlagsOpen {
		return false, ""
	}
	dirfd := unix.AT_FDCWD
	if i := sc.ArgIndex(sysinfo.ArgDirfd); i >= 0 {
		dirfd = int(int32(enter.Args[i]))
	}
	follow := true
	if i := sc.ArgIndex(sysinfo.ArgOpenFlags); i >= 0 && enter.Args[i]&unix.O_NOFOLLOW != 0 {
		follow = false
	}
	obj, err := o.resolver.Resolve(resolve.Request{
		Tid: enter.Tid, Tgid: enter.Tgid, Dirfd: dirfd, Path: enter.Path, Follow: follow,
		MayCreate: true, Identity: true,
	})
	if err != nil || !obj.Exists {
		return false, ""
	}
	if obj.Dev != exit.Dev || obj.Ino != exit.Ino {
		return true, "the argument names " + obj.Path + " but the kernel opened " + exit.KPath
	}
	return false, ""
}

// WatchCgroup adds every process in a cgroup v2 directory to the watched set.
// Processes that join the cgroup later from outside are not followed (their
// descendants are, through fork).
func WatchCgroup(watch func(int) error, dir string) (int, error) {
	b, err := os.ReadFile(dir + "/cgroup.procs")
	if err != nil {
		return 0, fmt.Errorf("reading cgroup members: %w", err)
	}
	n := 0
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		if err := watch(pid); err != nil {
			return n, fmt.Errorf("watching %d: %w", pid, err)
		}
		n++
	}
	return n, nil
}
