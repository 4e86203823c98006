package launch

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// forwarded are the signals a supervisor passes on to the command it runs,
// as sudo relays them to the command it runs as a child: the termination
// signals, and those a program is told things with (dd's progress and
// nginx's log reopening on SIGUSR1, a resized terminal's SIGWINCH, an alarm
// a scheduler sends). Without a handler Go would end the supervisor on the
// first (leaving the command to PR_SET_PDEATHSIG) and drop the others, so
// the command never saw them. Not forwarded: SIGPIPE (the supervisor's own
// writes raise it), the job-control signals (the terminal stops and
// continues the whole process group), the synchronous ones and those the Go
// runtime and the C library use themselves (SIGURG, SIGPROF, 32 and 33).
var forwarded = []os.Signal{
	syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGALRM, syscall.SIGWINCH,
}

// Relay forwards the signals the supervisor receives to its watchee while
// the command runs. After CommandExited, the first termination signal
// (SIGINT, SIGTERM, SIGHUP, SIGQUIT) is handed to Stopped instead, for a
// supervisor that goes on serving what the command left behind.
type Relay struct {
	w       *Watchee
	sigs    chan os.Signal
	exited  chan struct{}
	stopped chan os.Signal
}

// RelaySignals starts forwarding signals to w; Close stops it.
func (w *Watchee) RelaySignals() *Relay {
	r := &Relay{w: w, sigs: make(chan os.Signal, 8), exited: make(chan struct{}), stopped: make(chan os.Signal, 1)}
	signal.Notify(r.sigs, forwarded...)
	go r.loop()
	return r
}

// CommandExited says the command has exited: signals are no longer
// forwarded, and a termination signal goes to Stopped.
func (r *Relay) CommandExited() { close(r.exited) }

// Stopped receives the first termination signal after CommandExited.
func (r *Relay) Stopped() <-chan os.Signal { return r.stopped }

// Close stops the relay; the signals take Go's default actions again.
func (r *Relay) Close() {
	signal.Stop(r.sigs)
	close(r.sigs)
}

// loop forwards each signal unless the terminal already delivered it: a
// signal the terminal sent to its foreground process group has reached the
// command too, and forwarding it would deliver it twice (a second Ctrl-C is
// "force quit" to many programs).
func (r *Relay) loop() {
	for s := range r.sigs {
		select {
		case <-r.exited:
			if !terminates(s) {
				continue
			}
			select {
			case r.stopped <- s:
			default:
			}
		default:
			if !fromTerminal(s, r.w.Pid()) {
				_ = r.w.Process().Signal(s)
			}
		}
	}
}

// terminates reports whether s asks the supervisor to end.
func terminates(s os.Signal) bool {
	switch s {
	case syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT:
		return true
	}
	return false
}

// fromTerminal reports whether s is one the terminal sends its foreground
// process group (Ctrl-C, Ctrl-\, a hangup, a resize) while that group is
// the supervisor's and the command's: then the kernel delivered it to the
// command as well. The sender is not known (Go does not pass siginfo on),
// so a SIGINT sent with kill(2) to the supervisor alone while it runs in the
// foreground is not forwarded either; SIGTERM and SIGUSR1, which no
// terminal sends, always are.
func fromTerminal(s os.Signal, pid int) bool {
	if s != syscall.SIGINT && s != syscall.SIGQUIT && s != syscall.SIGHUP && s != syscall.SIGWINCH {
		return false
	}
	pgrp := unix.Getpgrp()
	if g, err := unix.Getpgid(pid); err != nil || g != pgrp {
		return false
	}
	tty, err := unix.Open("/dev/tty", unix.O_RDONLY|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return false // no controlling terminal
	}
	defer unix.Close(tty)
	fg, err := unix.IoctlGetInt(tty, unix.TIOCGPGRP)
	return err == nil && fg == pgrp
}
