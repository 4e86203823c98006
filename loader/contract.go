package loader

import "strconv"

// Limits shared with the eBPF programs. keep in sync with bpf/vigil.h
// (contract_test.go checks).
const (
	// PathMax is the longest path the kernel accepts, NUL included
	// (VIGIL_PATH_MAX); a bound argument is at most PathMax-1 bytes.
	PathMax = 4096
	// EventPath is how many bytes of a path an event carries
	// (VIGIL_EVENT_PATH).
	EventPath = 256
	// MaxWatched is the capacity of the watched set (VIGIL_MAX_WATCHED).
	MaxWatched = 65536
	// MaxBindings is the capacity of the binding map (VIGIL_MAX_BINDINGS).
	MaxBindings = 65536
	// BindSlots is how many slots the binding array has
	// (VIGIL_BIND_SLOTS): thread tid binds in slot tid&(BindSlots-1).
	BindSlots = 16384
	// CaptureNr bounds the syscall numbers Options.Capture may name
	// (VIGIL_CAPTURE_NR).
	CaptureNr = 1024
)

// Binding states (enum vigil_bind_state). keep in sync with bpf/vigil.h.
const (
	bindArmed   = 0
	bindEntered = 1
	bindKilled  = 2
	bindChecked = 3
	// bindReplaced: EXEC held by the vetted path with another file.
	bindReplaced = 4
)

// bindQuiet marks a binding whose confirmation nothing waits for
// (VIGIL_BIND_QUIET): sys_exit sends no EXIT event when it holds.
const bindQuiet = 1

// slotPublished is the high word of a slot key whose binding is complete
// (VIGIL_SLOT_PUBLISHED); slotSize is sizeof(struct vigil_slot).
const (
	slotPublished = 1
	slotSize      = 128
)

// Forms of a BindConnect binding to an AF_UNIX socket (addr[0] of struct
// vigil_binding: VIGIL_UNIX_PATH, VIGIL_UNIX_ABSTRACT). keep in sync with
// bpf/vigil.h.
const (
	unixPath     = 1
	unixAbstract = 2
)

// BindKind says which kernel object a bound grant must end up using
// (enum vigil_bind_kind). keep in sync with bpf/vigil.h.
type BindKind uint32

const (
	// BindFile binds an open-family call: the returned fd's inode must be
	// (Dev, Ino).
	BindFile BindKind = 1
	// BindCreate binds an O_CREAT open of a missing name: the open must
	// have created the returned file, whose parent directory must be
	// (Dev, Ino) and whose final component must be Name. A file that
	// appeared under the name after vetting (a racer's hard link) kills.
	BindCreate BindKind = 2
	// BindExec binds execve/execveat: at sched_process_exec, past the point
	// of no return and before the new image runs, the file the kernel is
	// about to run (bprm->file) must be (Dev, Ino). For a #! script that
	// file is the final interpreter, not the script: the binfmt loop has
	// replaced the script by then. So the enforcer binds the interpreter
	// its #! line names (resolved as the kernel resolves it), and the script
	// itself is pinned only by the sys_enter tripwire on its path: the
	// interpreter opens it again by name, with its own (trappable) open.
	BindExec BindKind = 3
	// BindConnect binds connect: at sys_exit of a connect that may have
	// connected (0, EINPROGRESS, or interrupted by a signal), the socket at
	// the fd argument must be connected to Family/Addr/Port, or for AF_UNIX
	// to the socket file (Dev, Ino) or the abstract UnixName.
	BindConnect BindKind = 4
	// BindClone binds clone/clone3: at sched_process_fork, the child must
	// have a namespace of its own for exactly the CLONE_NEW* bits of
	// CloneFlags and share every other one with its parent. On mismatch the
	// parent is killed at once and the child at its first return to user
	// mode, before it runs an instruction.
	BindClone BindKind = 5
)

func (k BindKind) String() string {
	switch k {
	case BindFile:
		return "file"
	case BindCreate:
		return "create"
	case BindExec:
		return "exec"
	case BindConnect:
		return "connect"
	case BindClone:
		return "clone"
	}
	return "BindKind(" + strconv.FormatUint(uint64(k), 10) + ")"
}

// EventType is the kind of a ring-buffer record (enum vigil_event_type).
// keep in sync with bpf/vigil.h.
type EventType uint32

const (
	// EventEnter is sys_enter of a captured syscall.
	EventEnter EventType = 1
	// EventExit is sys_exit of a captured or bound syscall.
	EventExit EventType = 2
	// EventViolation reports a binding that did not hold; it replaces the
	// ENTER or EXIT event the hook would otherwise have emitted.
	EventViolation EventType = 3
)

func (t EventType) String() string {
	switch t {
	case EventEnter:
		return "enter"
	case EventExit:
		return "exit"
	case EventViolation:
		return "violation"
	}
	return "EventType(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// Reason says why a violation fired (enum vigil_reason). keep in sync with
// bpf/vigil.h.
type Reason uint32

const (
	// ReasonOK is the reason of every non-violation event.
	ReasonOK Reason = 0
	// ReasonArgUnreadable: sys_enter could not read the bound argument, or
	// a bound call succeeded without sys_enter having checked it.
	ReasonArgUnreadable Reason = 1
	// ReasonArgChanged: the argument's bytes at sys_enter differ from the
	// vetted copy (a racing rewrite).
	ReasonArgChanged Reason = 2
	// ReasonObjectMismatch: the kernel used another object than the one
	// vetted.
	ReasonObjectMismatch Reason = 3
	// ReasonNoObject: the bound call succeeded but its fd held no file at
	// sys_exit (a sibling thread closed it).
	ReasonNoObject Reason = 4
	// ReasonUntracked: a watched process forked but the watched set was
	// full; the event's Args[0] is the child's tgid and Child its tid. The
	// parent is killed, and the child at its first return to user mode.
	ReasonUntracked Reason = 5
	// ReasonUnchecked: a bound execve or clone succeeded but its mid-call
	// object check (sched_process_exec, sched_process_fork) never ran, so
	// nothing says what the kernel used: fail closed.
	ReasonUnchecked Reason = 6
	// ReasonSharedFiles: a bound open in a thread group whose descriptor
	// table another process shares (killed at sys_enter, before it ran),
	// or the child that came to share it while one was pending (doomed):
	// no kill could take the descriptor back from the other process.
	ReasonSharedFiles Reason = 7
)

func (r Reason) String() string {
	switch r {
	case ReasonOK:
		return "ok"
	case ReasonArgUnreadable:
		return "arg_unreadable"
	case ReasonArgChanged:
		return "arg_changed"
	case ReasonObjectMismatch:
		return "object_mismatch"
	case ReasonNoObject:
		return "no_object"
	case ReasonUntracked:
		return "untracked"
	case ReasonUnchecked:
		return "unchecked"
	case ReasonSharedFiles:
		return "shared_files"
	}
	return "Reason(" + strconv.FormatUint(uint64(r), 10) + ")"
}

// Flags qualify an event (VIGIL_F_*). keep in sync with bpf/vigil.h.
type Flags uint32

const (
	// FlagBound: the event concerns a bound call.
	FlagBound Flags = 1
	// FlagPathTrunc: Path holds only the first EventPath bytes.
	FlagPathTrunc Flags = 2
	// FlagKPathTrunc: KPath is not exact: cut to its first EventPath
	// bytes or, deeper than 32 components, missing its leading ones.
	FlagKPathTrunc Flags = 4
	// FlagKilled: the program sent SIGKILL to the calling process.
	FlagKilled Flags = 8
	// FlagHasObject: Dev, Ino and KPath describe the kernel's object: the
	// file an open returned, the executable an execve runs, or the socket
	// file an AF_UNIX peer is bound to.
	FlagHasObject Flags = 16
	// FlagAtExit: the event was emitted at sys_exit (every EXIT, and a
	// VIOLATION found there), so Ret is valid. A VIOLATION without it was
	// raised at sys_enter before the syscall ran, or in the middle of it
	// (sched_process_exec, sched_process_fork).
	FlagAtExit Flags = 32
	// FlagHasPeer: PeerFamily and Peer describe the peer of the socket a
	// connect used (for AF_UNIX, KPath is the peer's address).
	FlagHasPeer Flags = 64
	// FlagHasChild: Child and ChildNS describe the child a clone created.
	FlagHasChild Flags = 128
	// FlagReplaced: a BindFile or BindExec grant stood for another object
	// than the vetted one, found under the vetted path in the vetted view
	// (Binding.Path): it replaced the vetted object under the same name.
	FlagReplaced Flags = 256

	flagsKnown = FlagBound | FlagPathTrunc | FlagKPathTrunc | FlagKilled | FlagHasObject | FlagAtExit |
		FlagHasPeer | FlagHasChild | FlagReplaced
)

// Has reports whether all of o is set in f.
func (f Flags) Has(o Flags) bool { return f&o == o }
