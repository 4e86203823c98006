package loader

import "strings"

// Limits shared with bpf/observe.c. keep in sync with bpf/observe.h
// (observe_contract_test.go checks).
const (
	// ObsPathMax is PATH_MAX (OBS_PATH_MAX): a record carries at most
	// ObsPathMax-1 bytes of a path argument and of a kernel path.
	ObsPathMax = 4096
	// ObsSyscallNr bounds the syscall numbers ObserverOptions.Syscalls may
	// name (OBS_SYSCALL_NR).
	ObsSyscallNr = 1024
	// ObsMaxWatched is the capacity of the observer's watched set
	// (OBS_MAX_WATCHED).
	ObsMaxWatched = 65536
	// ObsSockaddrMax is the most bytes of a connect sockaddr a record
	// carries (OBS_SOCKADDR_MAX).
	ObsSockaddrMax = 128
	// ObsKPathDepth is how many components of a kernel path the walk
	// follows (OBS_KPATH_DEPTH); deeper or longer (ObsPathMax) objects
	// have FlagObsKPathTrunc.
	ObsKPathDepth = 2048
)

// StartKind says what a path lookup started from (enum obs_start). keep in
// sync with bpf/observe.h.
type StartKind uint8

const (
	// StartNone: the syscall has no path argument, or it was never read.
	StartNone StartKind = 0
	// StartRoot: an absolute path, from the task's root.
	StartRoot StartKind = 1
	// StartCwd: a relative path from the working directory.
	StartCwd StartKind = 2
	// StartDirfd: a relative path from the dirfd argument's file (also
	// openat2 with RESOLVE_IN_ROOT, where that file is the root too).
	StartDirfd StartKind = 3

	startKindMax = StartDirfd
)

func (k StartKind) String() string {
	switch k {
	case StartNone:
		return "none"
	case StartRoot:
		return "root"
	case StartCwd:
		return "cwd"
	case StartDirfd:
		return "dirfd"
	}
	return "StartKind(?)"
}

// ObsFlags qualify an observed call (OBS_F_*). keep in sync with
// bpf/observe.h.
type ObsFlags uint32

const (
	// FlagObsHasRet: emitted at sys_exit; Ret and ExitTime are valid.
	FlagObsHasRet ObsFlags = 1
	// FlagObsHasPath: Path is the path argument.
	FlagObsHasPath ObsFlags = 2
	// FlagObsPathTrunc: the path argument had no NUL in its first
	// ObsPathMax bytes.
	FlagObsPathTrunc ObsFlags = 4
	// FlagObsPathAtExit: the path could not be read at sys_enter (its page
	// was not resident) and was read at sys_exit instead.
	FlagObsPathAtExit ObsFlags = 8
	// FlagObsHasObject: Dev, Ino, MntID, Mode, FsMagic and KPath describe
	// the kernel's object.
	FlagObsHasObject ObsFlags = 16
	// FlagObsKPathTrunc: KPath lacks its leading components.
	FlagObsKPathTrunc ObsFlags = 32
	// FlagObsStartFound: the kernel path walk met the lookup's start
	// object; KPath()[StartOff():] is the part below it.
	FlagObsStartFound ObsFlags = 64
	// FlagObsSockaddr: Path holds connect's sockaddr bytes.
	FlagObsSockaddr ObsFlags = 128
	// FlagObsHasPeer: PeerFamily and Peer describe the socket's peer.
	FlagObsHasPeer ObsFlags = 256
	// FlagObsHasHow: How holds openat2's struct open_how.
	FlagObsHasHow ObsFlags = 512
	// FlagObsKNameChecked: the kernel's copy of an exec's filename was
	// compared with the sys_enter copy.
	FlagObsKNameChecked ObsFlags = 1024
	// FlagObsKNameDiffers: ... and the two differed.
	FlagObsKNameDiffers ObsFlags = 2048
	// FlagObsNoReturn: exit or exit_group, emitted at sys_enter.
	FlagObsNoReturn ObsFlags = 4096
	// FlagObsStartPath: the walk from the object never met the start of a
	// relative lookup (a symlink or ".." led elsewhere); SPath is the
	// kernel's path of that start object.
	FlagObsStartPath ObsFlags = 8192

	obsFlagsKnown = FlagObsStartPath<<1 - 1
)

// Has reports whether all of o is set in f.
func (f ObsFlags) Has(o ObsFlags) bool { return f&o == o }

// ObsErrors say which part of an observed call could not be read
// (OBS_E_*). keep in sync with bpf/observe.h.
type ObsErrors uint32

const (
	// ErrObsPathUnreadable: the path argument could not be read at
	// sys_enter nor at sys_exit.
	ErrObsPathUnreadable ObsErrors = 1
	// ErrObsObjectUnreadable: the call returned an fd (or an exec
	// succeeded) but no file was found for it.
	ErrObsObjectUnreadable ObsErrors = 2
	// ErrObsStartUnreadable: the dirfd the lookup starts from held no file
	// at sys_enter.
	ErrObsStartUnreadable ObsErrors = 4
	// ErrObsHowUnreadable: openat2's struct open_how could not be read.
	ErrObsHowUnreadable ObsErrors = 8
	// ErrObsSockaddrUnreadable: connect's sockaddr could not be read.
	ErrObsSockaddrUnreadable ObsErrors = 16
	// ErrObsExitMissed: the call's sys_exit never came (the thread
	// exited first); Ret is unknown.
	ErrObsExitMissed ObsErrors = 32
	// ErrObsKPathUnreadable: the kernel path walk faulted.
	ErrObsKPathUnreadable ObsErrors = 64

	obsErrorsKnown = ErrObsKPathUnreadable<<1 - 1
)

var obsErrorText = [...]string{
	"path argument unreadable",
	"kernel object unreadable",
	"lookup start (dirfd) unreadable at sys_enter",
	"open_how unreadable",
	"sockaddr unreadable",
	"sys_exit never seen (thread exited)",
	"kernel path unreadable",
}

// String lists the errors in words, "; "-separated ("" for none).
func (e ObsErrors) String() string {
	var b strings.Builder
	for i, s := range obsErrorText {
		if e&(1<<i) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// AppendText appends String's text to dst without allocating.
func (e ObsErrors) AppendText(dst []byte) []byte {
	first := true
	for i, s := range obsErrorText {
		if e&(1<<i) == 0 {
			continue
		}
		if !first {
			dst = append(dst, "; "...)
		}
		dst = append(dst, s...)
		first = false
	}
	return dst
}

// Byte offsets of struct obs_event (bpf/observe.h). keep in sync with
// bpf/observe.h; observe_contract_test.go checks them against the bpf2go
// type.
const (
	obsOffTsEnter    = 0
	obsOffTsExit     = 8
	obsOffRet        = 16
	obsOffArgs       = 24
	obsOffDev        = 72
	obsOffIno        = 80
	obsOffHow        = 88
	obsOffStart      = 112
	obsOffRoot       = 136
	obsOffTgid       = 160
	obsOffTid        = 164
	obsOffNr         = 168
	obsOffFlags      = 172
	obsOffErrors     = 176
	obsOffMntID      = 180
	obsOffMode       = 184
	obsOffFsMagic    = 188
	obsOffPathLen    = 192
	obsOffKPathLen   = 194
	obsOffStartOff   = 196
	obsOffStartKind  = 198
	obsOffPeerFamily = 200
	obsOffPeerPort   = 202
	obsOffSPathLen   = 204
	obsOffPeer       = 208
	obsOffComm       = 224

	// ObsHeaderSize is sizeof(struct obs_event): a record is the header,
	// the path bytes, the kernel path bytes and the start path bytes.
	ObsHeaderSize = 240

	// Offsets inside struct obs_ident.
	obsIdentDev   = 0
	obsIdentIno   = 8
	obsIdentMntID = 16
)
