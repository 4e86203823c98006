// Package sysinfo is vigil's catalog of the syscalls it can inspect: their
// x86_64 numbers, the layout of their arguments, which policy match keys apply
// to them and how the kernel follows symlinks in their path arguments.
//
// It is the one table that the policy validator, the argument decoders, the
// object resolver and the filter compiler share, so that a rule can never name
// an argument that the decoders do not read.
package sysinfo

import "sort"

// ArgKind says how one register argument of a syscall is interpreted.
type ArgKind uint8

// Argument kinds. Pointer kinds are read from the watchee's memory.
const (
	ArgNone        ArgKind = iota
	ArgInt                 // plain integer, not decoded further
	ArgDirfd               // directory fd that the next ArgPath is relative to (AT_FDCWD allowed)
	ArgFd                  // an fd the syscall operates on (fsetxattr, connect, bind)
	ArgPath                // pointer to a NUL-terminated path, resolved as an object
	ArgString              // pointer to a NUL-terminated string that is not resolved (symlink target)
	ArgOpenFlags           // open(2) flags
	ArgMode                // mode_t
	ArgOpenHow             // pointer to struct open_how (size in the following ArgSize)
	ArgCloneArgs           // pointer to struct clone_args (size in the following ArgSize)
	ArgSize                // size of the preceding struct or buffer
	ArgDev                 // dev_t
	ArgAtFlags             // AT_* flags
	ArgXattrName           // pointer to a NUL-terminated xattr name
	ArgXattrValue          // pointer to the xattr value (size in the following ArgSize)
	ArgSockaddr            // pointer to a struct sockaddr (length in the following ArgSize)
	ArgCloneFlags          // clone(2) flags in a register
	ArgRenameFlags         // renameat2 flags
	ArgPtr                 // pointer that vigil does not read (argv, envp, stack, ...)
	ArgMsgFlags            // MSG_* flags of a send
	ArgDestAddr            // sendto's destination: a struct sockaddr pointer, NULL for none (length in the following ArgSize)
	ArgMsghdr              // pointer to sendmsg's struct user_msghdr (destination in msg_name)
	ArgMmsghdr             // pointer to sendmmsg's struct mmsghdr array (count in the following ArgInt)
)

// Key is a policy match key (docs/design.md §5).
type Key uint8

// Match keys.
const (
	KeyPath Key = 1 << iota
	KeyFlags
	KeyResolve
	KeyAddr
	KeyDev
	KeyXattr
)

// String returns the key's name as written in a policy.
func (k Key) String() string {
	switch k {
	case KeyPath:
		return "path"
	case KeyFlags:
		return "flags"
	case KeyResolve:
		return "resolve"
	case KeyAddr:
		return "addr"
	case KeyDev:
		return "dev"
	case KeyXattr:
		return "xattr"
	}
	return "unknown"
}

// Has reports whether k includes every key in o.
func (k Key) Has(o Key) bool { return k&o == o }

// FlagSet names the family of flag names a syscall's `flags` key takes.
type FlagSet uint8

// Flag families.
const (
	FlagsNone  FlagSet = iota
	FlagsOpen          // O_* (open family; openat2 takes them from open_how.flags)
	FlagsClone         // CLONE_* (clone flags register, clone3 clone_args.flags)
)

// Follow says whether the kernel follows a final-component symlink of a path.
type Follow uint8

// Symlink-following rules for the final path component.
const (
	FollowAlways       Follow = iota // stat, execve, truncate, chmod, setxattr
	FollowNever                      // unlink, rmdir, rename, mkdir, mknod, symlink, lchown, lsetxattr
	FollowUnlessONofol               // open family: follows unless O_NOFOLLOW (or O_CREAT|O_EXCL)
	FollowUnlessAtNofo               // *at with AT_SYMLINK_NOFOLLOW in the ArgAtFlags argument
	FollowIfAtFollow                 // linkat: follows only with AT_SYMLINK_FOLLOW
)

// Syscall describes one inspectable syscall.
type Syscall struct {
	Name    string
	Nr      int
	Args    [6]ArgKind
	Keys    Key     // match keys a rule may use for this syscall
	Flags   FlagSet // family of names for the flags key
	Follow  Follow  // final-component symlink rule for the first path argument
	Follow2 Follow  // rule for the second path argument (rename, link)
	// Creates is true when the syscall's path may name an object that does
	// not exist yet (the binding is then the parent plus the final name).
	Creates bool
}

// PathArgs returns the indexes of the ArgPath arguments, in order.
func (s *Syscall) PathArgs() []int {
	var idx []int
	for i, a := range s.Args {
		if a == ArgPath {
			idx = append(idx, i)
		}
	}
	return idx
}

// ArgIndex returns the index of the first argument of kind k, or -1.
func (s *Syscall) ArgIndex(k ArgKind) int {
	for i, a := range s.Args {
		if a == k {
			return i
		}
	}
	return -1
}

const pathKeys = KeyPath

var catalog = []Syscall{
	{Name: "open", Args: args(ArgPath, ArgOpenFlags, ArgMode), Keys: KeyPath | KeyFlags, Flags: FlagsOpen, Follow: FollowUnlessONofol, Creates: true},
	{Name: "openat", Args: args(ArgDirfd, ArgPath, ArgOpenFlags, ArgMode), Keys: KeyPath | KeyFlags, Flags: FlagsOpen, Follow: FollowUnlessONofol, Creates: true},
	{Name: "openat2", Args: args(ArgDirfd, ArgPath, ArgOpenHow, ArgSize), Keys: KeyPath | KeyFlags | KeyResolve, Flags: FlagsOpen, Follow: FollowUnlessONofol, Creates: true},
	{Name: "creat", Args: args(ArgPath, ArgMode), Keys: KeyPath | KeyFlags, Flags: FlagsOpen, Follow: FollowUnlessONofol, Creates: true},
	{Name: "execve", Args: args(ArgPath, ArgPtr, ArgPtr), Keys: pathKeys, Follow: FollowAlways},
	{Name: "execveat", Args: args(ArgDirfd, ArgPath, ArgPtr, ArgPtr, ArgAtFlags), Keys: pathKeys, Follow: FollowUnlessAtNofo},
	{Name: "unlink", Args: args(ArgPath), Keys: pathKeys, Follow: FollowNever},
	{Name: "unlinkat", Args: args(ArgDirfd, ArgPath, ArgAtFlags), Keys: pathKeys, Follow: FollowNever},
	{Name: "rmdir", Args: args(ArgPath), Keys: pathKeys, Follow: FollowNever},
	{Name: "rename", Args: args(ArgPath, ArgPath), Keys: pathKeys, Follow: FollowNever, Follow2: FollowNever, Creates: true},
	{Name: "renameat", Args: args(ArgDirfd, ArgPath, ArgDirfd, ArgPath), Keys: pathKeys, Follow: FollowNever, Follow2: FollowNever, Creates: true},
	{Name: "renameat2", Args: args(ArgDirfd, ArgPath, ArgDirfd, ArgPath, ArgRenameFlags), Keys: pathKeys, Follow: FollowNever, Follow2: FollowNever, Creates: true},
	{Name: "mkdir", Args: args(ArgPath, ArgMode), Keys: pathKeys, Follow: FollowNever, Creates: true},
	{Name: "mkdirat", Args: args(ArgDirfd, ArgPath, ArgMode), Keys: pathKeys, Follow: FollowNever, Creates: true},
	{Name: "symlink", Args: args(ArgString, ArgPath), Keys: pathKeys, Follow: FollowNever, Creates: true},
	{Name: "symlinkat", Args: args(ArgString, ArgDirfd, ArgPath), Keys: pathKeys, Follow: FollowNever, Creates: true},
	{Name: "link", Args: args(ArgPath, ArgPath), Keys: pathKeys, Follow: FollowNever, Follow2: FollowNever, Creates: true},
	{Name: "linkat", Args: args(ArgDirfd, ArgPath, ArgDirfd, ArgPath, ArgAtFlags), Keys: pathKeys, Follow: FollowIfAtFollow, Follow2: FollowNever, Creates: true},
	{Name: "chmod", Args: args(ArgPath, ArgMode), Keys: pathKeys, Follow: FollowAlways},
	{Name: "fchmodat", Args: args(ArgDirfd, ArgPath, ArgMode), Keys: pathKeys, Follow: FollowAlways},
	// fchmodat2 (Linux 6.6) adds the flags fchmodat lacks; without it a
	// chmod rule would be bypassed by the newer call.
	{Name: "fchmodat2", Args: args(ArgDirfd, ArgPath, ArgMode, ArgAtFlags), Keys: pathKeys, Follow: FollowUnlessAtNofo},
	{Name: "chown", Args: args(ArgPath, ArgInt, ArgInt), Keys: pathKeys, Follow: FollowAlways},
	{Name: "lchown", Args: args(ArgPath, ArgInt, ArgInt), Keys: pathKeys, Follow: FollowNever},
	{Name: "fchownat", Args: args(ArgDirfd, ArgPath, ArgInt, ArgInt, ArgAtFlags), Keys: pathKeys, Follow: FollowUnlessAtNofo},
	{Name: "truncate", Args: args(ArgPath, ArgInt), Keys: pathKeys, Follow: FollowAlways},
	{Name: "mknod", Args: args(ArgPath, ArgMode, ArgDev), Keys: KeyPath | KeyDev, Follow: FollowNever, Creates: true},
	{Name: "mknodat", Args: args(ArgDirfd, ArgPath, ArgMode, ArgDev), Keys: KeyPath | KeyDev, Follow: FollowNever, Creates: true},
	{Name: "setxattr", Args: args(ArgPath, ArgXattrName, ArgXattrValue, ArgSize, ArgInt), Keys: KeyPath | KeyXattr, Follow: FollowAlways},
	{Name: "lsetxattr", Args: args(ArgPath, ArgXattrName, ArgXattrValue, ArgSize, ArgInt), Keys: KeyPath | KeyXattr, Follow: FollowNever},
	{Name: "fsetxattr", Args: args(ArgFd, ArgXattrName, ArgXattrValue, ArgSize, ArgInt), Keys: KeyPath | KeyXattr, Follow: FollowAlways},
	{Name: "removexattr", Args: args(ArgPath, ArgXattrName), Keys: KeyPath | KeyXattr, Follow: FollowAlways},
	{Name: "lremovexattr", Args: args(ArgPath, ArgXattrName), Keys: KeyPath | KeyXattr, Follow: FollowNever},
	{Name: "fremovexattr", Args: args(ArgFd, ArgXattrName), Keys: KeyPath | KeyXattr, Follow: FollowAlways},
	{Name: "connect", Args: args(ArgFd, ArgSockaddr, ArgSize), Keys: KeyAddr},
	{Name: "bind", Args: args(ArgFd, ArgSockaddr, ArgSize), Keys: KeyAddr},
	// The sends that can name their peer (a datagram's destination, TCP
	// fast open): addr rules hold for them as for connect. Their address
	// is decoded by the send path (enforcer/send.go), which knows the
	// socket's family, not by the generic decoder.
	{Name: "sendto", Args: args(ArgFd, ArgPtr, ArgInt, ArgMsgFlags, ArgDestAddr, ArgSize), Keys: KeyAddr},
	{Name: "sendmsg", Args: args(ArgFd, ArgMsghdr, ArgMsgFlags), Keys: KeyAddr},
	{Name: "sendmmsg", Args: args(ArgFd, ArgMmsghdr, ArgInt, ArgMsgFlags), Keys: KeyAddr},
	{Name: "clone", Args: args(ArgCloneFlags, ArgPtr, ArgPtr, ArgPtr, ArgInt), Keys: KeyFlags, Flags: FlagsClone},
	{Name: "clone3", Args: args(ArgCloneArgs, ArgSize), Keys: KeyFlags, Flags: FlagsClone},
}

func args(kinds ...ArgKind) (a [6]ArgKind) {
	copy(a[:], kinds)
	return a
}

var byName, byNr = func() (map[string]*Syscall, map[int]*Syscall) {
	n := make(map[string]*Syscall, len(catalog))
	r := make(map[int]*Syscall, len(catalog))
	for i := range catalog {
		s := &catalog[i]
		nr, ok := numbers[s.Name]
		if !ok {
			panic("sysinfo: catalog names unknown syscall " + s.Name)
		}
		s.Nr = nr
		n[s.Name] = s
		r[nr] = s
	}
	return n, r
}()

// Lookup returns the catalog entry for an inspectable syscall by name.
func Lookup(name string) (*Syscall, bool) {
	s, ok := byName[name]
	return s, ok
}

// ByNr returns the catalog entry for an inspectable syscall by x86_64 number.
func ByNr(nr int) (*Syscall, bool) {
	s, ok := byNr[nr]
	return s, ok
}

// Number returns the x86_64 number of any syscall vigil knows the name of
// (inspectable or not).
func Number(name string) (int, bool) {
	nr, ok := numbers[name]
	return nr, ok
}

// Name returns the name of an x86_64 syscall number, or "" when unknown.
// It is on every notification's path, hence the array.
func Name(nr int) string {
	if nr < 0 || nr >= len(names) {
		return ""
	}
	return names[nr]
}

// MaxNr bounds x86_64 syscall numbers; tables indexed by number use it.
const MaxNr = 1024

var names = func() (t [MaxNr]string) {
	for n, nr := range numbers {
		if nr >= 0 && nr < MaxNr {
			t[nr] = n
		}
	}
	return t
}()

// Inspectable returns the names of the syscalls whose arguments vigil decodes,
// sorted.
func Inspectable() []string {
	out := make([]string, 0, len(catalog))
	for _, s := range catalog {
		out = append(out, s.Name)
	}
	sort.Strings(out)
	return out
}
