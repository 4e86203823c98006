package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"strings"
	"time"
)

// Record is one audit record as vigil writes it: the single definition of
// the records' field names and types (docs/design.md §6). The supervisor
// writes its records with zerolog on the notify loop (enforcer/record.go),
// using the Field*, Arg* and Kernel* constants of this package, which a test
// holds equal to Record's JSON tags; `vigil observe` writes the same
// fields for what it shares with the supervisor, and its own fields are
// those of the embedded Observed. Read records with ParseRecord or Reader,
// never by field-name strings.
type Record struct {
	Time  time.Time `json:"time"`
	Level string    `json:"level"`
	// Pid, Tid and Comm are the caller's thread group, thread and command.
	Pid  int    `json:"pid"`
	Tid  int    `json:"tid"`
	Comm string `json:"comm"`
	// CommEscaped: Comm is escaped (Escape), its bytes not being UTF-8 (a
	// thread names itself with any bytes).
	CommEscaped bool   `json:"comm_escaped,omitempty"`
	Syscall     string `json:"syscall"`
	// Container and ListenerMetadata are set in agent mode.
	Container        string `json:"container,omitempty"`
	ListenerMetadata string `json:"listener_metadata,omitempty"`
	// Args is what vigil decoded of the call's arguments.
	Args Args `json:"args,omitzero"`
	// Rule is the deciding rule's name, "rules[N]", "default", or "" when
	// vigil answered before any rule.
	Rule string `json:"rule,omitempty"`
	// Action is the action carried out: allow, deny, kill, emulate, log.
	Action string `json:"action,omitempty"`
	// Errno names the answer's errno (observe: the return value's).
	Errno string `json:"errno,omitempty"`
	// Reason says why vigil refused a call a rule allowed, or could not
	// vet it.
	Reason   string `json:"reason,omitempty"`
	Emulated bool   `json:"emulated,omitempty"`
	// Verified is one of the Verified* values, for continued calls.
	Verified string `json:"verified,omitempty"`
	// Kernel is what eBPF saw the kernel do; nil when nothing was seen.
	Kernel *Kernel `json:"kernel,omitempty"`
	// Withdrawn: the watchee stopped waiting before the answer reached it.
	Withdrawn bool `json:"withdrawn,omitempty"`
	// Replayed: the call restarted one vigil had already performed and got
	// that call's result.
	Replayed bool `json:"replayed,omitempty"`
	// LatencyUs is how long the call took to answer (observe: to run), in
	// microseconds.
	LatencyUs float64 `json:"latency_us"`
	Observed
}

// Observed holds the fields only `vigil observe` writes: it watches calls
// without deciding them, so it reports the kernel's return value and
// whether what the kernel used differs from what user memory held.
type Observed struct {
	// Ret is the call's return value; nil when the call did not return.
	Ret *int64 `json:"ret,omitempty"`
	// Phantom: the kernel used another object than the arguments name.
	Phantom bool `json:"phantom,omitempty"`
	// PhantomReason says how a phantom differs.
	PhantomReason string `json:"phantom_reason,omitempty"`
	// PhantomUnchecked says why an event could not be compared.
	PhantomUnchecked string `json:"phantom_unchecked,omitempty"`
	// CaptureError names what the eBPF programs could not capture.
	CaptureError string `json:"error,omitempty"`
}

// Args is a record's "args": the call's arguments as vigil decoded them.
type Args struct {
	// Path is the first path as spelled; Resolved the object's reference
	// name (or an AF_UNIX socket's object when Addr is set).
	Path     string `json:"path,omitempty"`
	Resolved string `json:"resolved,omitempty"`
	// Dirfd is the first path's directory descriptor, when not AT_FDCWD.
	Dirfd *int `json:"dirfd,omitempty"`
	// Path2, Resolved2 and Dirfd2 are the second path of rename and link.
	Path2     string `json:"path2,omitempty"`
	Resolved2 string `json:"resolved2,omitempty"`
	Dirfd2    *int   `json:"dirfd2,omitempty"`
	// Target is a symlink's contents.
	Target     string `json:"target,omitempty"`
	Flags      string `json:"flags,omitempty"`
	CloneFlags string `json:"clone_flags,omitempty"`
	Resolve    string `json:"resolve,omitempty"`
	// Mode is an octal file mode ("0644").
	Mode  string `json:"mode,omitempty"`
	Addr  string `json:"addr,omitempty"`
	Dev   string `json:"dev,omitempty"`
	Xattr string `json:"xattr,omitempty"`
	// Error names the errno of an argument vigil could not vet.
	Error string `json:"error,omitempty"`
	// Escaped names the fields above whose value is escaped (Escape)
	// because its bytes are not UTF-8; Unescape gives the bytes back.
	Escaped []string `json:"escaped,omitempty"`
	ObservedArgs
}

// ObservedArgs holds the arguments only `vigil observe` writes.
type ObservedArgs struct {
	// Fd is connect's socket.
	Fd *int `json:"fd,omitempty"`
	// Raw holds the six registers of a call observe does not decode.
	Raw []uint64 `json:"raw,omitempty"`
	// PathTruncated: Path is a prefix of a longer path.
	PathTruncated bool `json:"path_truncated,omitempty"`
	// PathReadAtExit: Path was unreadable at sys_enter and was read once
	// the kernel had copied it.
	PathReadAtExit bool `json:"path_read_at_exit,omitempty"`
}

// Kernel is a record's "kernel": what eBPF saw the kernel do.
type Kernel struct {
	// Ret is the return value; nil for a violation caught at sys_enter.
	Ret *int64 `json:"ret,omitempty"`
	// Dev ("MAJOR:MINOR") and Ino identify the file used; Path names it.
	Dev  string `json:"dev,omitempty"`
	Ino  uint64 `json:"ino,omitempty"`
	Path string `json:"path,omitempty"`
	// PathTruncated: Path is a prefix of a longer path (observe).
	PathTruncated bool `json:"path_truncated,omitempty"`
	// PathEscaped: Path is escaped (Escape), its bytes not being UTF-8.
	PathEscaped bool `json:"path_escaped,omitempty"`
	// Peer is a connect's peer address.
	Peer string `json:"peer,omitempty"`
	// Family is the address family of a peer Peer does not show (observe).
	Family string `json:"family,omitempty"`
	// Child is a clone's child.
	Child int `json:"child,omitempty"`
	// Reason is a violation's reason (arg_changed, object_mismatch, ...).
	Reason string `json:"reason,omitempty"`
	// Replaced: another object under the vetted name was accepted.
	Replaced bool `json:"replaced,omitempty"`
}

// ErrNotRecord marks a JSON object that is not an audit record: a line of
// vigil's own diagnostics (it has a "message") or an object without a
// syscall.
var ErrNotRecord = errors.New("not an audit record")

// ParseRecord parses one audit record, strictly: a field Record does not
// define, a field of the wrong type, or anything after the object is an
// error, so a record vigil writes that this definition does not describe
// fails the tests that read it.
func ParseRecord(line []byte) (Record, error) {
	var r Record
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return r, errors.New("audit record: empty line")
	}
	if line[0] != '{' {
		return r, fmt.Errorf("audit record: want a JSON object, got %s", quoteStart(line))
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		if isDiagnostic(line) {
			return Record{}, fmt.Errorf("audit record: %w: a diagnostic line", ErrNotRecord)
		}
		return Record{}, fmt.Errorf("audit record %s: %w", quoteStart(line), err)
	}
	if dec.InputOffset() != int64(len(line)) {
		return Record{}, fmt.Errorf("audit record: data after the object: %s", quoteStart(line[dec.InputOffset():]))
	}
	if r.Syscall == "" {
		return Record{}, fmt.Errorf("audit record: %w: no %q", ErrNotRecord, FieldSyscall)
	}
	if err := checkKeys(line); err != nil {
		return Record{}, fmt.Errorf("audit record %s: %w", quoteStart(line), err)
	}
	return r, nil
}

// Each object's field names, from the JSON tags: encoding/json matches
// names without regard to case, and a record must spell them exactly.
var (
	recordKeys = jsonKeys(reflect.TypeFor[Record]())
	argsKeys   = jsonKeys(reflect.TypeFor[Args]())
	kernelKeys = jsonKeys(reflect.TypeFor[Kernel]())
)

// jsonKeys returns the JSON names of t's fields, embedded structs' included.
func jsonKeys(t reflect.Type) map[string]bool {
	keys := map[string]bool{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			maps.Copy(keys, jsonKeys(f.Type))
			continue
		}
		keys[name] = true
	}
	return keys
}

// checkKeys reports a field name that is not spelled as Record spells it.
// line has already decoded into a Record.
func checkKeys(line []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(line, &top); err != nil {
		return err
	}
	if err := exactKeys("", top, recordKeys); err != nil {
		return err
	}
	for name, keys := range map[string]map[string]bool{FieldArgs: argsKeys, FieldKernel: kernelKeys} {
		raw, ok := top[name]
		if !ok || string(raw) == "null" {
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return err
		}
		if err := exactKeys(name+".", obj, keys); err != nil {
			return err
		}
	}
	return nil
}

func exactKeys(prefix string, obj map[string]json.RawMessage, keys map[string]bool) error {
	for k := range obj {
		if !keys[k] {
			return fmt.Errorf("unknown field %q", prefix+k)
		}
	}
	return nil
}

// isDiagnostic reports whether line is one of vigil's own log lines, which
// share a --log file with the records and always carry a message.
func isDiagnostic(line []byte) bool {
	var probe struct {
		Message *string `json:"message"`
	}
	return json.Unmarshal(line, &probe) == nil && probe.Message != nil
}

// quoteStart quotes the first bytes of b for an error message.
func quoteStart(b []byte) string {
	const max = 80
	if len(b) > max {
		return fmt.Sprintf("%q…", b[:max])
	}
	return fmt.Sprintf("%q", b)
}

// maxLine bounds one line of an audit log (paths are at most PATH_MAX,
// and a record holds a few).
const maxLine = 1 << 20

// Reader reads the records of a JSON-lines audit log, skipping vigil's
// own diagnostic lines that a --log file also holds.
type Reader struct {
	sc   *bufio.Scanner
	line int
	rec  Record
	err  error
}

// NewReader reads records from r.
func NewReader(r io.Reader) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	return &Reader{sc: sc}
}

// Next reads the next record and reports whether there was one; after it
// returns false, Err says why.
func (r *Reader) Next() bool {
	for r.err == nil && r.sc.Scan() {
		r.line++
		b := r.sc.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		rec, err := ParseRecord(b)
		if errors.Is(err, ErrNotRecord) {
			continue
		}
		if err != nil {
			r.err = fmt.Errorf("line %d: %w", r.line, err)
			return false
		}
		r.rec = rec
		return true
	}
	if r.err == nil {
		if err := r.sc.Err(); err != nil {
			r.err = fmt.Errorf("reading audit log after line %d: %w", r.line, err)
		}
	}
	return false
}

// Record returns the record Next read.
func (r *Reader) Record() Record { return r.rec }

// Err returns the error that ended Next, nil at the end of the log.
func (r *Reader) Err() error { return r.err }

// ReadRecords reads every record of a JSON-lines audit log.
func ReadRecords(r io.Reader) ([]Record, error) {
	var out []Record
	rd := NewReader(r)
	for rd.Next() {
		out = append(out, rd.Record())
	}
	return out, rd.Err()
}

// String returns r as JSON, as vigil writes it, for messages about it.
func (r Record) String() string {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Sprintf("unprintable audit record: %v", err)
	}
	return string(b)
}
