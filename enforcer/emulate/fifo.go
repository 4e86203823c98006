package emulate

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrCanceled means OpenFIFO gave up waiting: the watchee no longer waits
// for its open.
var ErrCanceled = errors.New("the watchee stopped waiting for its FIFO open")

// OpenFIFO performs an open of a FIFO that waits for the other end
// (Prepared.Blocking), which a worker must not do: the worker serves every
// call of its namespaces one at a time. The watchee's permission is checked
// in its worker first (faccessat2 with AT_EACCESS under its credentials, the
// check may_open makes), then vigil opens the FIFO it holds through its
// magic link, on the calling goroutine, waiting as long as the watchee would
// have: call it off the notify loop. Closing cancel (the watchee is gone)
// makes it return ErrCanceled: vigil opens the other end itself, without
// blocking, to end its own wait. A FIFO's open has no other effect than the
// rendezvous, and its open file records no credentials that matter.
func (e *Emulator) OpenFIFO(p *Prepared, cancel <-chan struct{}) (Result, error) {
	if err := p.check(lookupOpen); err != nil || !p.Blocking() || p.ObjectFd < 0 {
		return errnoResult(0), fmt.Errorf("open fifo: not a prepared blocking FIFO open: %v", err)
	}
	flags := p.how.Flags
	mode, other := uint64(unix.R_OK), unix.O_WRONLY
	if flags&unix.O_ACCMODE == unix.O_WRONLY {
		mode, other = unix.W_OK, unix.O_RDONLY
	}
	acc, err := e.do(p, &request{Op: opAccess, Mode: mode}, objectIn(p))
	if err != nil {
		return errnoResult(0), err
	}
	if acc.Errno != 0 {
		return acc, nil
	}
	path := "/proc/self/fd/" + strconv.Itoa(p.ObjectFd)
	done := make(chan struct{})
	canceled := make(chan struct{})
	released := make(chan struct{}) // the canceller let go of its end
	go func() {
		defer close(released)
		select {
		case <-done:
		case <-cancel:
			close(canceled)
			// Our open waits for this very end: take it for a moment.
			if fd, err := unix.Open(path, other|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
				<-done
				unix.Close(fd)
			}
		}
	}()
	f := flags&^(unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_TRUNC) | unix.O_CLOEXEC | unix.O_NOCTTY
	var fd int
	for {
		fd, err = unix.Open(path, int(f), 0)
		if err != unix.EINTR {
			break
		}
	}
	close(done)
	select {
	case <-canceled:
		if err == nil {
			unix.Close(fd)
		}
		// Only once vigil's end is closed: a restarted open (the
		// watchee handled the signal that canceled this one) would
		// pair with it, and then find it gone.
		<-released
		return errnoResult(0), ErrCanceled
	default:
	}
	if err != nil {
		var e unix.Errno
		if errors.As(err, &e) {
			return errnoResult(e), nil
		}
		return errnoResult(0), err
	}
	var fdFlags uint32
	if flags&unix.O_CLOEXEC != 0 {
		fdFlags = unix.O_CLOEXEC
	}
	return Result{Fd: fd, FdFlags: fdFlags}, nil
}

// ControllingTerminal returns an O_PATH descriptor of the watchee's
// controlling terminal, which /dev/tty names for its opener: the device
// number is tty_nr in /proc/<tid>/stat, and the terminal is found among the
// watchee's own descriptors (a process with a controlling terminal nearly
// always holds it on 0, 1 or 2). ENXIO when it has none, as the kernel's
// open of /dev/tty answers; ErrUnsupported when it holds no descriptor of it.
func (e *Emulator) ControllingTerminal(c Caller) (int, error) {
	tidfd, err := unix.Openat(e.procfd, strconv.Itoa(c.Tid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, unix.ESRCH
	}
	defer unix.Close(tidfd)
	var buf [512]byte
	b, err := readProcFile(tidfd, "stat", buf[:])
	if err != nil {
		return -1, unix.ESRCH
	}
	_, tty, ok := statSessionTTY(b)
	if !ok {
		return -1, fmt.Errorf("parsing /proc/%d/stat: %q", c.Tid, bytes.TrimSpace(b))
	}
	if tty == 0 {
		return -1, unix.ENXIO
	}
	// tty_nr is the kernel's new_encode_dev: minor bits 0-7 and 20-31,
	// major bits 8-19.
	want := unix.Mkdev(uint32(tty>>8)&0xfff, uint32(tty&0xff)|uint32(tty>>12)&0xfff00)
	dfd, err := unix.Openat(tidfd, "fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, unix.ESRCH
	}
	defer unix.Close(dfd)
	dents := make([]byte, 4096)
	for {
		n, err := unix.Getdents(dfd, dents)
		if err != nil || n == 0 {
			break
		}
		var names []string
		_, _, names = unix.ParseDirent(dents[:n], -1, names)
		for _, name := range names {
			fd, err := unix.Openat(dfd, name, unix.O_PATH|unix.O_CLOEXEC, 0)
			if err != nil {
				continue
			}
			var st unix.Stat_t
			if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == want {
				return fd, nil
			}
			unix.Close(fd)
		}
	}
	return -1, fmt.Errorf("%w: the watchee holds no descriptor of its controlling terminal", ErrUnsupported)
}
