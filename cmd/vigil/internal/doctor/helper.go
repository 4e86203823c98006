package doctor

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/vigilsec/vigil/enforcer/reexec"
)

// helperRole is the doctor helper's reexec role; its one argument is the
// mode. Like launch's init step the marker is argv[0], so it never leaks into
// anyone's environment.
const helperRole = "doctor"

// Helper modes (the helper's argument).
const (
	modeProbe      = "probe"
	modeSecurityfs = "securityfs"
)

// helperTimeout bounds a helper's run: a kernel that loses a notification
// must not hang `vigil doctor`.
const helperTimeout = 15 * time.Second

// HelperRole is the doctor's helper process, for reexec.Run first thing in
// main or TestMain of binaries that call Probe.
func HelperRole() reexec.Role { return reexec.Role{Name: helperRole, Main: helperMain} }

func helperMain(args []string) int {
	var err error
	switch {
	case len(args) != 1:
		err = fmt.Errorf("started with arguments %q", args)
	case args[0] == modeProbe:
		err = helperProbe(os.Stdin, os.Stdout)
	case args[0] == modeSecurityfs:
		err = helperSecurityfs(os.Stdout)
	default:
		err = fmt.Errorf("unknown helper mode %q", args[0])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vigil doctor helper: %v\n", err)
		return 1
	}
	return 0
}

// helperOutput is the one JSON line a probe helper writes.
type helperOutput struct {
	Results map[string]result `json:"results"`
	// Addr and Token name a buffer in the helper's memory that the parent
	// reads with process_vm_readv, as vigil reads a watchee's.
	Addr  uint64 `json:"addr"`
	Token string `json:"token"`
}

// securityfsOutput is what a securityfs helper writes.
type securityfsOutput struct {
	Lockdown string `json:"lockdown"`
	LSM      string `json:"lsm"`
}

// helper is a started helper process.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	errb  *limitedBuffer
}

// startHelper re-executes the running binary as a helper in mode.
func startHelper(mode string, attr *syscall.SysProcAttr) (*helper, error) {
	cmd := reexec.Command("", helperRole, mode)
	// No asynchronous preemption: SIGURG would restart the helper's
	// trapped calls and blur what the kernel did.
	cmd.Env = append(os.Environ(), "GODEBUG=asyncpreemptoff=1")
	cmd.SysProcAttr = attr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("creating helper stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("creating helper stdout: %w", err)
	}
	h := &helper{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout), errb: &limitedBuffer{max: 4096}}
	cmd.Stderr = h.errb
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting doctor helper: %w", err)
	}
	return h, nil
}

// readJSON reads one JSON line from the helper into v, killing the helper
// if it takes longer than helperTimeout.
func (h *helper) readJSON(v any) error {
	type line struct {
		b   []byte
		err error
	}
	ch := make(chan line, 1)
	go func() {
		b, err := h.out.ReadBytes('\n')
		ch <- line{b, err}
	}()
	select {
	case l := <-ch:
		if l.err != nil && len(l.b) == 0 {
			return fmt.Errorf("reading helper output: %w (stderr: %q)", l.err, h.errb.String())
		}
		if err := json.Unmarshal(l.b, v); err != nil {
			return fmt.Errorf("decoding helper output %q: %w", l.b, err)
		}
		return nil
	case <-time.After(helperTimeout):
		_ = h.cmd.Process.Kill()
		return fmt.Errorf("helper gave no answer within %v", helperTimeout)
	}
}

// finish closes the helper's stdin (its cue to exit) and reaps it.
func (h *helper) finish() error {
	h.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- h.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("doctor helper: %w (stderr: %q)", err, h.errb.String())
		}
		return nil
	case <-time.After(helperTimeout):
		_ = h.cmd.Process.Kill()
		<-done
		return errors.New("doctor helper did not exit")
	}
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

// Write keeps what fits and reports everything written, so the helper never
// blocks on its stderr.
func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - len(l.b); room > 0 {
		if len(p) < room {
			room = len(p)
		}
		l.b = append(l.b, p[:room]...)
	}
	return len(p), nil
}

// String returns what was kept.
func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
