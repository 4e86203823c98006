// Package reexec is how vigil starts its helper processes: by re-executing
// its own binary with argv[0] naming a role.
//
// A Go process cannot do several things vigil needs: it cannot fork and run
// code before exec, it is multi-threaded before main runs, and what it does to
// itself it keeps for life. So work that needs a fresh single-threaded process
// runs in a re-execution of vigil:
//
//   - "init" (package launch): the watchee's init step installs the seccomp
//     filter on its one locked thread, without TSYNC, and execs the command;
//   - "emulate" (package emulate): an emulation worker joins a watchee's user
//     and mount namespaces with setns(2), which refuses multi-threaded
//     callers, in a C constructor that runs before the Go runtime starts;
//   - "doctor" (the doctor front end): a throwaway process that installs
//     probe filters, which can never be removed from the process that
//     installed them.
//
// The role travels in argv[0] as "vigil:<role>" (Arg0), never in the
// environment, so no marker leaks into a watchee's environment. A binary that
// may be re-executed calls Run with the roles it serves first thing in main —
// or in TestMain of a test binary that starts helpers, since a test re-executes
// itself, not vigil. There is no registration by init(): every binary lists
// its roles where Run is called.
package reexec

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
)

// Self re-executes the running binary: the kernel's link to the file this
// process was started from, which stays valid when the file on disk is
// replaced or removed.
const Self = "/proc/self/exe"

// arg0Prefix starts argv[0] of every helper process. Keep in sync with
// enforcer/emulate/nsenter.c, which reads argv[0] before Go starts.
const arg0Prefix = "vigil:"

// Arg0 returns argv[0] of a helper process in role.
func Arg0(role string) string { return arg0Prefix + role }

// Role is one kind of helper process.
type Role struct {
	// Name selects the role: argv[0] is Arg0(Name).
	Name string
	// Main runs the helper with argv[1:] and returns its exit status. It
	// runs on the main goroutine before anything else in the program.
	Main func(args []string) int
}

// Command returns a command that runs role with args in a re-execution of
// exe, or of the running binary (Self) when exe is empty. The caller sets its
// environment, files and attributes and starts it.
func Command(exe, role string, args ...string) *exec.Cmd {
	if exe == "" {
		exe = Self
	}
	return &exec.Cmd{Path: exe, Args: append([]string{Arg0(role)}, args...)}
}

// Run runs the helper this process was started as and exits with its status,
// when argv[0] names one of roles; otherwise it returns at once. A process
// started as a role this binary does not serve exits with status 2 rather
// than run as vigil.
func Run(roles ...Role) {
	if len(os.Args) == 0 || !strings.HasPrefix(os.Args[0], arg0Prefix) {
		return
	}
	for _, r := range roles {
		if os.Args[0] == Arg0(r.Name) {
			os.Exit(r.Main(os.Args[1:]))
		}
	}
	fmt.Fprintf(os.Stderr, "vigil: %q names no helper role of this binary\n", os.Args[0])
	os.Exit(2)
}

// Processes vigil must not outlive — the watchee's init step, emulation
// workers — carry PR_SET_PDEATHSIG, which fires when the forking *thread*
// exits, not the process. Go ends a thread whose goroutine exits locked to
// it (the emulator's bind threads do, on purpose), and an ordinary
// goroutine may have forked from that very thread before. So such
// processes are started from one thread of vigil's own, locked for the
// life of the process: their parent-death signal fires only when vigil
// dies. The spawner never blocks a signal either: Go's fork gives the
// child the forking thread's signal mask, and a receiver may block every
// signal while it serves.
var (
	spawnOnce  sync.Once
	spawnQueue chan spawnRequest
)

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

// Start starts cmd from the spawner thread and returns cmd.Start's error.
func Start(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnQueue = make(chan spawnRequest)
		go serveSpawns(spawnQueue)
	})
	r := spawnRequest{cmd: cmd, done: make(chan error, 1)}
	spawnQueue <- r
	return <-r.done
}

// serveSpawns runs on a thread it never unlocks. A goroutine started with
// go runs on an unlocked thread, whose mask is the runtime's own (quiet
// receivers restore theirs before they unlock).
func serveSpawns(q <-chan spawnRequest) {
	runtime.LockOSThread()
	for r := range q {
		r.done <- r.cmd.Start()
	}
}
