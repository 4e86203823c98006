package agent

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Notifier tells a service manager about the agent's state with the
// sd_notify(3) protocol: each state change is one datagram of
// newline-separated KEY=VALUE assignments sent to the unix socket named by
// $NOTIFY_SOCKET (a path, or an abstract name after "@"). systemd's
// Type=notify waits for READY=1 before it starts the units ordered after
// the agent, so no container starts before the agent's socket accepts. No
// libsystemd is needed: the protocol is the datagram.
type Notifier struct {
	addr *net.UnixAddr // nil: not run by a service manager
}

// NewNotifier reads $NOTIFY_SOCKET and unsets it, so nothing the agent
// starts (emulation workers) can speak for the agent. Without it the
// Notifier does nothing. A value that is neither a path nor an abstract
// name is an error (systemd's vsock: addresses are not supported).
func NewNotifier() (*Notifier, error) {
	v, ok := os.LookupEnv("NOTIFY_SOCKET")
	if !ok {
		return &Notifier{}, nil
	}
	os.Unsetenv("NOTIFY_SOCKET")
	return ParseNotifySocket(v)
}

// ParseNotifySocket returns a Notifier sending to the socket a
// $NOTIFY_SOCKET value names: "/path" or "@abstract" ("" sends nothing).
func ParseNotifySocket(v string) (*Notifier, error) {
	switch {
	case v == "":
		return &Notifier{}, nil
	case len(v) >= len(unix.RawSockaddrUnix{}.Path):
		return nil, fmt.Errorf("NOTIFY_SOCKET is %d bytes, longer than a unix socket address", len(v))
	case v[0] == '/', v[0] == '@' && len(v) > 1:
		// Go turns a leading "@" into the abstract namespace's NUL.
		return &Notifier{addr: &net.UnixAddr{Name: v, Net: "unixgram"}}, nil
	}
	return nil, fmt.Errorf("NOTIFY_SOCKET %q is neither a socket path nor an @abstract name", v)
}

// Enabled reports whether a service manager listens.
func (n *Notifier) Enabled() bool { return n.addr != nil }

// Ready says the agent accepts handoffs; status is a line for
// `systemctl status`.
func (n *Notifier) Ready(status string) error {
	return n.send("READY=1", "STATUS="+status)
}

// Reloading says a SIGHUP's reload began; Ready ends it. MONOTONIC_USEC
// lets systemd's Type=notify-reload (systemd ≥ 253) match the reload with
// its request; Type=notify ignores it.
func (n *Notifier) Reloading() error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("reading the monotonic clock: %w", err)
	}
	return n.send("RELOADING=1", fmt.Sprintf("MONOTONIC_USEC=%d", ts.Nano()/1000), "STATUS=reloading")
}

// Stopping says the agent no longer accepts handoffs and is draining.
func (n *Notifier) Stopping(status string) error {
	return n.send("STOPPING=1", "STATUS="+status)
}

func (n *Notifier) send(assignments ...string) error {
	if n == nil || n.addr == nil {
		return nil
	}
	for _, a := range assignments {
		if strings.ContainsRune(a, '\n') {
			return errors.New("notifying the service manager: newline in " + a)
		}
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("notifying the service manager at %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(assignments, "\n") + "\n")); err != nil {
		return fmt.Errorf("notifying the service manager at %s: %w", n.addr.Name, err)
	}
	return nil
}
