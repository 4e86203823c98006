package args

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestFormatOpenFlags(t *testing.T) {
	cases := []struct {
		f    uint64
		want string
	}{
		{0, "O_RDONLY"},
		{unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC, "O_WRONLY|O_CREAT|O_TRUNC"},
		{unix.O_RDWR | unix.O_CLOEXEC, "O_RDWR|O_CLOEXEC"},
		{3, "O_ACCMODE"},
		{unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_PATH, "O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_PATH|O_DIRECTORY"},
		{unix.O_WRONLY | unix.O_SYNC, "O_WRONLY|O_SYNC"},
		{unix.O_WRONLY | unix.O_DSYNC, "O_WRONLY|O_DSYNC"},
		{unix.O_RDWR | unix.O_TMPFILE, "O_RDWR|O_TMPFILE"},
		{unix.O_RDONLY | unix.O_DIRECTORY, "O_RDONLY|O_DIRECTORY"},
		{0o100000, "O_RDONLY|O_LARGEFILE"},
		{unix.O_ASYNC, "O_RDONLY|FASYNC"},
		{unix.O_WRONLY | unix.O_CREAT | 1<<40, "O_WRONLY|O_CREAT|0x10000000000"},
		{0x80000000, "O_RDONLY|0x80000000"},
	}
	for _, c := range cases {
		if got := FormatOpenFlags(c.f); got != c.want {
			t.Errorf("FormatOpenFlags(%#o) = %q, want %q", c.f, got, c.want)
		}
	}
}

func TestFormatCloneFlags(t *testing.T) {
	cases := []struct {
		f    uint64
		want string
	}{
		{0, "0"},
		{unix.CLONE_NEWUSER | unix.CLONE_NEWNS, "CLONE_NEWNS|CLONE_NEWUSER"},
		{unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD | unix.CLONE_SYSVSEM | unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID,
			"CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID"},
		{unix.CLONE_NEWTIME | unix.CLONE_INTO_CGROUP | unix.CLONE_PIDFD, "CLONE_PIDFD|CLONE_NEWTIME|CLONE_INTO_CGROUP"},
		{unix.CLONE_CLEAR_SIGHAND, "CLONE_CLEAR_SIGHAND"},
		{0x00400000, "0x400000"},
		{unix.CLONE_VM | 1<<40 | 0x1, "CLONE_VM|0x10000000001"},
	}
	for _, c := range cases {
		if got := FormatCloneFlags(c.f); got != c.want {
			t.Errorf("FormatCloneFlags(%#x) = %q, want %q", c.f, got, c.want)
		}
	}
}

func TestFormatLegacyCloneFlags(t *testing.T) {
	cases := []struct {
		f    uint64
		want string
	}{
		{0, "0"},
		{uint64(unix.SIGCHLD), "SIGCHLD"},
		{unix.CLONE_CHILD_CLEARTID | unix.CLONE_CHILD_SETTID | uint64(unix.SIGCHLD), "CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD"},
		{unix.CLONE_VM | unix.CLONE_VFORK, "CLONE_VM|CLONE_VFORK"},
		{unix.CLONE_NEWUSER | 34, "CLONE_NEWUSER|SIGRT_2"},
		{unix.CLONE_NEWUSER | 0x80, "CLONE_NEWUSER|128"},
		{1<<40 | uint64(unix.SIGCHLD), "0x10000000000|SIGCHLD"},
	}
	for _, c := range cases {
		if got := FormatLegacyCloneFlags(c.f); got != c.want {
			t.Errorf("FormatLegacyCloneFlags(%#x) = %q, want %q", c.f, got, c.want)
		}
	}
}

func TestFormatResolve(t *testing.T) {
	cases := []struct {
		f    uint64
		want string
	}{
		{0, "0"},
		{unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS, "RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH"},
		{0x3f, "RESOLVE_NO_XDEV|RESOLVE_NO_MAGICLINKS|RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH|RESOLVE_IN_ROOT|RESOLVE_CACHED"},
		{0x40, "0x40"},
	}
	for _, c := range cases {
		if got := FormatResolve(c.f); got != c.want {
			t.Errorf("FormatResolve(%#x) = %q, want %q", c.f, got, c.want)
		}
	}
}

// TestFlagTablesMatchUnix checks the literal tables against x/sys where x/sys
// has the kernel's value (it has glibc's O_LARGEFILE, 0 on amd64).
func TestFlagTablesMatchUnix(t *testing.T) {
	want := map[string]uint64{
		"O_CREAT": unix.O_CREAT, "O_EXCL": unix.O_EXCL, "O_NOCTTY": unix.O_NOCTTY, "O_TRUNC": unix.O_TRUNC,
		"O_APPEND": unix.O_APPEND, "O_NONBLOCK": unix.O_NONBLOCK, "O_SYNC": unix.O_SYNC, "O_DSYNC": unix.O_DSYNC,
		"O_DIRECT": unix.O_DIRECT, "O_NOFOLLOW": unix.O_NOFOLLOW, "O_NOATIME": unix.O_NOATIME,
		"O_CLOEXEC": unix.O_CLOEXEC, "O_PATH": unix.O_PATH, "O_TMPFILE": unix.O_TMPFILE,
		"O_DIRECTORY": unix.O_DIRECTORY, "FASYNC": unix.O_ASYNC, "O_NDELAY": unix.O_NDELAY, "O_ASYNC": unix.O_ASYNC,
		"O_RSYNC": unix.O_RSYNC, "O_FSYNC": unix.O_FSYNC, "O_RDONLY": unix.O_RDONLY, "O_WRONLY": unix.O_WRONLY,
		"O_RDWR": unix.O_RDWR, "O_ACCMODE": unix.O_ACCMODE,
		"CLONE_VM": unix.CLONE_VM, "CLONE_FS": unix.CLONE_FS, "CLONE_FILES": unix.CLONE_FILES,
		"CLONE_SIGHAND": unix.CLONE_SIGHAND, "CLONE_PIDFD": unix.CLONE_PIDFD, "CLONE_PTRACE": unix.CLONE_PTRACE,
		"CLONE_VFORK": unix.CLONE_VFORK, "CLONE_PARENT": unix.CLONE_PARENT, "CLONE_THREAD": unix.CLONE_THREAD,
		"CLONE_NEWNS": unix.CLONE_NEWNS, "CLONE_SYSVSEM": unix.CLONE_SYSVSEM, "CLONE_SETTLS": unix.CLONE_SETTLS,
		"CLONE_PARENT_SETTID": unix.CLONE_PARENT_SETTID, "CLONE_CHILD_CLEARTID": unix.CLONE_CHILD_CLEARTID,
		"CLONE_DETACHED": unix.CLONE_DETACHED, "CLONE_UNTRACED": unix.CLONE_UNTRACED,
		"CLONE_CHILD_SETTID": unix.CLONE_CHILD_SETTID, "CLONE_NEWCGROUP": unix.CLONE_NEWCGROUP,
		"CLONE_NEWUTS": unix.CLONE_NEWUTS, "CLONE_NEWIPC": unix.CLONE_NEWIPC, "CLONE_NEWUSER": unix.CLONE_NEWUSER,
		"CLONE_NEWPID": unix.CLONE_NEWPID, "CLONE_NEWNET": unix.CLONE_NEWNET, "CLONE_IO": unix.CLONE_IO,
		"CLONE_NEWTIME": unix.CLONE_NEWTIME, "CLONE_CLEAR_SIGHAND": unix.CLONE_CLEAR_SIGHAND,
		"CLONE_INTO_CGROUP": unix.CLONE_INTO_CGROUP,
		"RESOLVE_NO_XDEV":   unix.RESOLVE_NO_XDEV, "RESOLVE_NO_MAGICLINKS": unix.RESOLVE_NO_MAGICLINKS,
		"RESOLVE_NO_SYMLINKS": unix.RESOLVE_NO_SYMLINKS, "RESOLVE_BENEATH": unix.RESOLVE_BENEATH,
		"RESOLVE_IN_ROOT": unix.RESOLVE_IN_ROOT,
	}
	for name, v := range want {
		var got uint64
		var ok bool
		switch name[:2] {
		case "O_", "FA":
			got, ok = OpenFlagValue(name)
		case "CL":
			got, ok = CloneFlagValue(name)
		default:
			got, ok = ResolveFlagValue(name)
		}
		if !ok || got != v {
			t.Errorf("%s = %#x, %v; want %#x", name, got, ok, v)
		}
	}
	if v, ok := OpenFlagValue("O_LARGEFILE"); !ok || v != 0o100000 {
		t.Errorf("O_LARGEFILE = %#o, %v; want the kernel's 0100000", v, ok)
	}
	if v, ok := ResolveFlagValue("RESOLVE_CACHED"); !ok || v != 0x20 {
		t.Errorf("RESOLVE_CACHED = %#x, %v", v, ok)
	}
	for _, name := range []string{"O_BOGUS", "CLONE_BOGUS", "RESOLVE_BOGUS", ""} {
		if _, ok := OpenFlagValue(name); ok {
			t.Errorf("OpenFlagValue(%q) found", name)
		}
		if _, ok := CloneFlagValue(name); ok {
			t.Errorf("CloneFlagValue(%q) found", name)
		}
		if _, ok := ResolveFlagValue(name); ok {
			t.Errorf("ResolveFlagValue(%q) found", name)
		}
	}
}
