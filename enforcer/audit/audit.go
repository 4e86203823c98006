// Package audit defines vigil's audit record (Record: the stable field names
// and types of docs/design.md §6), reads records back (ParseRecord, Reader),
// and writes them: one JSON line per decision, or a human console line on a
// terminal. Records are buffered and flushed at least every FlushInterval, so
// the notify loop never waits for a write(2) per notification; Close flushes
// everything.
package audit

import (
	"bufio"
	"io"
	"os"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// Field names of audit records: each is the JSON tag of a Record field (a
// test holds them equal). The supervisor writes its records with these
// constants; observe's events and vigil's diagnostics reuse them for what
// they share.
const (
	FieldTime             = "time"
	FieldLevel            = "level"
	FieldPid              = "pid"
	FieldTid              = "tid"
	FieldComm             = "comm"
	FieldCommEscaped      = "comm_escaped"
	FieldSyscall          = "syscall"
	FieldContainer        = "container"
	FieldListenerMetadata = "listener_metadata"
	FieldArgs             = "args"
	FieldRule             = "rule"
	FieldAction           = "action"
	FieldErrno            = "errno"
	// FieldReason says why vigil refused a call a rule allowed (it could
	// not carry the allow out safely) or could not vet it at all.
	FieldReason    = "reason"
	FieldEmulated  = "emulated"
	FieldVerified  = "verified"
	FieldKernel    = "kernel"
	FieldWithdrawn = "withdrawn"
	FieldReplayed  = "replayed"
	FieldLatency   = "latency_us"

	// Fields only observe writes (Observed).
	FieldRet              = "ret"
	FieldPhantom          = "phantom"
	FieldPhantomReason    = "phantom_reason"
	FieldPhantomUnchecked = "phantom_unchecked"
	FieldCaptureError     = "error"
)

// Names inside a record's "args" (Args).
const (
	ArgPath       = "path"
	ArgPath2      = "path2"
	ArgResolved   = "resolved"
	ArgResolved2  = "resolved2"
	ArgDirfd      = "dirfd"
	ArgDirfd2     = "dirfd2"
	ArgFlags      = "flags"
	ArgResolve    = "resolve"
	ArgMode       = "mode"
	ArgAddr       = "addr"
	ArgDev        = "dev"
	ArgXattr      = "xattr"
	ArgCloneFlags = "clone_flags"
	ArgTarget     = "target"
	ArgError      = "error"
	// ArgEscaped lists the args whose bytes are not UTF-8, written escaped
	// (Escape) instead of with U+FFFD: a file name is any bytes.
	ArgEscaped = "escaped"

	// Arguments only observe writes (ObservedArgs).
	ArgFd             = "fd"
	ArgRaw            = "raw"
	ArgPathTruncated  = "path_truncated"
	ArgPathReadAtExit = "path_read_at_exit"
)

// Names inside a record's "kernel" (Kernel).
const (
	KernelRet           = "ret"
	KernelDev           = "dev"
	KernelIno           = "ino"
	KernelPath          = "path"
	KernelPathTruncated = "path_truncated"
	KernelPathEscaped   = "path_escaped"
	KernelPeer          = "peer"
	KernelFamily        = "family"
	KernelChild         = "child"
	KernelReason        = "reason"
	KernelReplaced      = "replaced"
)

// Field names of vigil's diagnostics, which are not audit records.
const (
	FieldNotifID = "notif_id"
	FieldErr     = "err"
)

// Verified values.
const (
	VerifiedNone     = "none"
	VerifiedKernel   = "kernel"
	VerifiedMismatch = "mismatch"
	// VerifiedUnconfirmed marks a bound grant whose kernel event never
	// arrived (lost, or the call blocked past the wait).
	VerifiedUnconfirmed = "unconfirmed"
)

// FlushInterval bounds how long a record may sit in the buffer.
const FlushInterval = 100 * time.Millisecond

// Sink is a buffered, mutex-protected destination for records.
type Sink struct {
	mu     sync.Mutex
	buf    *bufio.Writer
	closer io.Closer
	done   chan struct{}
	// kick tells the flusher that a record went into an empty buffer.
	kick chan struct{}
	wg   sync.WaitGroup
}

// NewSink buffers w (closing it on Close when it is an io.Closer other than
// stdout/stderr) and flushes it FlushInterval after a record arrives in an
// empty buffer: a quiet sink wakes nobody.
func NewSink(w io.Writer) *Sink {
	s := &Sink{buf: bufio.NewWriterSize(w, 64<<10), done: make(chan struct{}), kick: make(chan struct{}, 1)}
	if c, ok := w.(io.Closer); ok && w != os.Stderr && w != os.Stdout {
		s.closer = c
	}
	s.wg.Add(1)
	go s.flusher()
	return s
}

// Write implements io.Writer; zerolog writes one whole record per call.
func (s *Sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	first := s.buf.Buffered() == 0
	n, err := s.buf.Write(p)
	s.mu.Unlock()
	if first {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return n, err
}

// Flush writes buffered records out.
func (s *Sink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Flush()
}

// Reopen flushes the buffered records to the current writer, closes it
// (unless it is stdout or stderr) and sends every later record to w: a
// daemon's SIGHUP after logrotate renamed its file. No record is lost or
// split: writers wait while the writer changes.
func (s *Sink) Reopen(w io.Writer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.buf.Flush()
	if s.closer != nil {
		if cerr := s.closer.Close(); err == nil {
			err = cerr
		}
	}
	s.buf.Reset(w)
	s.closer = nil
	if c, ok := w.(io.Closer); ok && w != os.Stderr && w != os.Stdout {
		s.closer = c
	}
	return err
}

// Close flushes and stops the flusher.
func (s *Sink) Close() error {
	close(s.done)
	s.wg.Wait()
	err := s.Flush()
	if s.closer != nil {
		if cerr := s.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// flusher flushes FlushInterval after each record that found the buffer
// empty; the records that follow it before then go out with it.
func (s *Sink) flusher() {
	defer s.wg.Done()
	t := time.NewTimer(FlushInterval)
	t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-s.kick:
		}
		t.Reset(FlushInterval)
		select {
		case <-s.done:
			t.Stop()
			return
		case <-t.C:
			_ = s.Flush()
		}
	}
}

// NewLogger returns a zerolog.Logger writing to w: JSON lines, or a human
// console format when w is a terminal.
func NewLogger(w io.Writer, level zerolog.Level) zerolog.Logger {
	out := w
	if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		out = zerolog.ConsoleWriter{Out: f, TimeFormat: "15:04:05.000"}
	}
	return zerolog.New(out).Level(level).With().Timestamp().Logger()
}

func init() {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	zerolog.TimestampFieldName = FieldTime
	zerolog.ErrorFieldName = FieldErr
}
