package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// MaxHandoff is the default cap on a handoff's JSON payload. runc's state
// is a few hundred bytes plus the container's annotations; a megabyte leaves
// room for generous annotations and still bounds a hostile peer.
const MaxHandoff = 1 << 20

// maxIDLen bounds the container id: it lands in every audit record.
const maxIDLen = 1024

// Sentinel errors, wrapped with the detail, so callers and tests can tell
// the kinds of bad handoff apart.
var (
	// ErrIncomplete means the bytes so far are a prefix of a JSON value.
	ErrIncomplete = errors.New("incomplete JSON")
	// ErrMalformed means the payload is not the container process state.
	ErrMalformed = errors.New("malformed handoff")
	// ErrVersion means the ociVersion is missing, or neither 1.x nor
	// crun's "0.2.0".
	ErrVersion = errors.New("unsupported ociVersion")
	// ErrFds means the fds list does not describe the attached fds.
	ErrFds = errors.New("bad fds")
	// ErrTooLarge means the payload exceeds the cap.
	ErrTooLarge = errors.New("handoff too large")
	// ErrTruncated means the peer closed before a complete payload.
	ErrTruncated = errors.New("truncated handoff")
)

// Handoff is a parsed container process state.
type Handoff struct {
	// Version is the ociVersion the runtime sent (runc 1.1 sends
	// "1.0.2-dev", crun "0.2.0"); see supportedVersion.
	Version string
	// FdNames names the attached fds in SCM_RIGHTS order.
	FdNames []string
	// Seccomp is the index of the seccomp listener in FdNames.
	Seccomp int
	// Pid is the container process as the runtime sees it.
	Pid int
	// Metadata is the profile's listenerMetadata.
	Metadata string
	// State is the container's state (id, status, pid, bundle,
	// annotations).
	State specs.State
}

// ID returns the container id.
func (h *Handoff) ID() string { return h.State.ID }

// Frame finds the end of the first JSON value in buf, which must be an
// object. It returns ErrIncomplete while buf is only a prefix of one (the
// caller reads more), and ErrMalformed when no amount of further input can
// make it one. The runtime sends no delimiter and may keep its end open, so
// the message ends where its JSON value ends, not at EOF.
func Frame(buf []byte) (end int, err error) {
	i := skipSpace(buf, 0)
	if i == len(buf) {
		return 0, ErrIncomplete
	}
	if buf[i] != '{' {
		return 0, fmt.Errorf("%w: payload does not start with a JSON object (first byte %q)", ErrMalformed, buf[i])
	}
	dec := json.NewDecoder(bytes.NewReader(buf))
	var raw json.RawMessage
	switch err := dec.Decode(&raw); {
	case err == nil:
		return int(dec.InputOffset()), nil
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return 0, ErrIncomplete
	default:
		return 0, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
}

// Trailing reports whether anything but whitespace follows the first value:
// the peer sent more than one message.
func Trailing(buf []byte, end int) bool {
	return skipSpace(buf, end) < len(buf)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// ParseHandoff checks one complete payload against the nfds descriptors
// that arrived with it. It does no I/O; the caller closes every fd when it
// fails, and every fd but the seccomp listener when it succeeds.
func ParseHandoff(payload []byte, nfds int) (*Handoff, error) {
	var st specs.ContainerProcessState
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("%w: decoding container process state: %v", ErrMalformed, err)
	}
	if !supportedVersion(st.Version) {
		return nil, fmt.Errorf("%w %s: vigil speaks runtime-spec 1.x (and crun's %q)", ErrVersion, quoteClip(st.Version), crunStateVersion)
	}
	h := &Handoff{Version: st.Version, FdNames: st.Fds, Seccomp: -1, Pid: st.Pid, Metadata: st.Metadata, State: st.State}
	if st.Fds == nil {
		return nil, fmt.Errorf("%w: no \"fds\" list (want [%q])", ErrFds, specs.SeccompFdName)
	}
	if len(st.Fds) != nfds {
		return nil, fmt.Errorf("%w: \"fds\" names %d descriptors but %d arrived", ErrFds, len(st.Fds), nfds)
	}
	for i, name := range st.Fds {
		if name != specs.SeccompFdName {
			continue
		}
		if h.Seccomp >= 0 {
			return nil, fmt.Errorf("%w: %q is listed twice", ErrFds, specs.SeccompFdName)
		}
		h.Seccomp = i
	}
	if h.Seccomp < 0 {
		return nil, fmt.Errorf("%w: no %q among %s", ErrFds, specs.SeccompFdName, quoteClip(strings.Join(st.Fds, ",")))
	}
	if st.Pid < 0 || st.State.Pid < 0 {
		return nil, fmt.Errorf("%w: negative pid", ErrMalformed)
	}
	if err := checkLabel("state.id", st.State.ID, maxIDLen); err != nil {
		return nil, err
	}
	return h, nil
}

// crunStateVersion is the ociVersion every crun release from 0.19 (the
// first with listenerPath) to at least 1.29 writes into its handoff (a constant OCI_VERSION in
// get_seccomp_receiver_fd_payload, src/libcrun/container.c), in both the
// top level and the state. The payload has runtime-spec's
// ContainerProcessState layout all the same: ociVersion, fds
// ["seccompFd"], pid, metadata and state {ociVersion, id, status, pid,
// bundle, annotations}.
const crunStateVersion = "0.2.0"

// supportedVersion accepts "1" and "1.<anything>": runc sends its spec
// version (runc 1.1 "1.0.2-dev"), and 1.x keeps ContainerProcessState
// compatible. It also accepts crun's fixed "0.2.0" (crunStateVersion), and
// nothing else before 1.0: earlier drafts had no listener handoff.
func supportedVersion(v string) bool {
	return v == "1" || strings.HasPrefix(v, "1.") || v == crunStateVersion
}

// checkLabel refuses empty, oversized, non-UTF-8 or control-character
// strings: ids end up in audit records and on terminals.
func checkLabel(what, s string, max int) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: %s is empty", ErrMalformed, what)
	case len(s) > max:
		return fmt.Errorf("%w: %s is %d bytes (max %d)", ErrMalformed, what, len(s), max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not UTF-8", ErrMalformed, what)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %s %s contains a control character", ErrMalformed, what, quoteClip(s))
		}
	}
	return nil
}

// quoteClip quotes s for an error message, clipped so a hostile payload
// cannot flood the log.
func quoteClip(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
