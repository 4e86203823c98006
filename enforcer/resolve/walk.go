package resolve

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// procRootIno is the inode number of procfs's root (PROC_ROOT_INO).
const procRootIno = 1

// walk resolves path component by component the way fs/namei.c does, but from
// vigil with the watchee's root and base: ".." never climbs above the
// watchee's root, absolute symlinks restart at it, /proc/self and
// /proc/thread-self name the watchee, and procfs magic links are followed
// through their explicit pid so they land on the watchee's objects.
//
//	cur := base (or root for an absolute path); queue := components(path)
//	while queue: c := pop
//	    "." / "": skip;  "..": cur = parent(cur) unless cur is root
//	    on procfs root: self -> <tgid>, thread-self -> <tgid>/task/<tid>
//	    fd := openat(cur, c, O_PATH|O_NOFOLLOW)
//	    missing and last and mayCreate: object = cur + "/" + c
//	    symlink and (not last or follow):
//	        procfs: follow it as a magic link; else push readlink(fd) in front
//	    cur = fd
func (c *walkCtx) walk(basefd int, path string, follow, mayCreate bool) (Object, error) {
	cur, err := unix.Dup(basefd)
	if err != nil {
		return Object{}, err
	}
	defer func() { unix.Close(cur) }()
	if strings.HasPrefix(path, "/") {
		if err := c.reset(&cur, c.rootfd); err != nil {
			return Object{}, err
		}
	}
	mustDir := strings.HasSuffix(path, "/")
	queue := splitPath(path)
	links := 0
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		last := len(queue) == 0
		switch name {
		case "", ".":
			continue
		case "..":
			if err := c.dotdot(&cur); err != nil {
				return Object{}, err
			}
			continue
		}
		if sub := c.procSelf(cur, name); sub != "" {
			queue = append(splitPath(sub), queue...)
			continue
		}
		fd, err := unix.Openat(cur, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT && last && mayCreate {
			// Also for a trailing slash: mkdir("newdir/") creates newdir.
			return c.missing(cur, name)
		}
		if err != nil {
			return Object{}, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return Object{}, err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK && (!last || follow || mustDir) {
			links++
			if links > maxSymlinks {
				unix.Close(fd)
				return Object{}, unix.ELOOP
			}
			n, err := unix.Readlinkat(fd, "", c.r.link)
			if err != nil {
				unix.Close(fd)
				return Object{}, err
			}
			target := string(c.r.link[:n])
			if isProc(cur) && !strings.HasPrefix(target, "self") && !strings.HasPrefix(target, "thread-self") {
				// A procfs magic link (fd/N, cwd, root, exe, ...) under an
				// explicit pid: its readlink text is a description, not a
				// path, so let the kernel follow it. Plain procfs symlinks
				// (mounts -> self/mounts) are walked below, where "self"
				// becomes the watchee's pid.
				unix.Close(fd)
				fd, err = unix.Openat(cur, name, unix.O_PATH|unix.O_CLOEXEC, 0)
				if err != nil {
					return Object{}, err
				}
				unix.Close(cur)
				cur = fd
				if err := unix.Fstat(cur, &st); err != nil {
					return Object{}, err
				}
				if !last && st.Mode&unix.S_IFMT != unix.S_IFDIR {
					return Object{}, unix.ENOTDIR
				}
				continue
			}
			unix.Close(fd)
			if strings.HasPrefix(target, "/") {
				if err := c.reset(&cur, c.rootfd); err != nil {
					return Object{}, err
				}
			}
			// A dangling final symlink under O_CREAT creates its target, so
			// the target's components keep the create semantics.
			queue = append(splitPath(target), queue...)
			continue
		}
		if !last && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			unix.Close(fd)
			return Object{}, unix.ENOTDIR
		}
		unix.Close(cur)
		cur = fd
	}
	if mustDir {
		var st unix.Stat_t
		if err := unix.Fstat(cur, &st); err != nil {
			return Object{}, err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return Object{}, unix.ENOTDIR
		}
	}
	obj, err := c.describe(cur)
	if err != nil {
		return Object{}, err
	}
	return obj, nil
}

func (c *walkCtx) reset(cur *int, to int) error {
	fd, err := unix.Dup(to)
	if err != nil {
		return err
	}
	unix.Close(*cur)
	*cur = fd
	return nil
}

func (c *walkCtx) dotdot(cur *int) error {
	var st unix.Stat_t
	if err := unix.Fstat(*cur, &st); err != nil {
		return err
	}
	if st.Dev == c.rootDev && st.Ino == c.rootIno {
		return nil
	}
	fd, err := unix.Openat(*cur, "..", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	unix.Close(*cur)
	*cur = fd
	return nil
}

// procSelf rewrites /proc/self and /proc/thread-self, which procfs resolves
// for the *reading* process, into the watchee's explicit ids.
func (c *walkCtx) procSelf(cur int, name string) string {
	if name != "self" && name != "thread-self" {
		return ""
	}
	var st unix.Stat_t
	if err := unix.Fstat(cur, &st); err != nil || st.Ino != procRootIno || !isProc(cur) {
		return ""
	}
	tgid, tid := nsIDs(c.req.Tgid, c.req.Tid)
	if name == "self" {
		return tgid
	}
	return tgid + "/task/" + tid
}

// nsIDs returns the watchee's thread-group and thread ids in its own pid
// namespace, the one a procfs it mounted (a container's /proc) numbers
// processes in. vigil's ids name another process there, or none: runc init
// opening its exec FIFO as /proc/self/fd/N would get ENOENT. The ids are the
// last fields of NStgid and NSpid in /proc/<tid>/status (Linux 4.1); without
// them, vigil's own view is the best guess.
func nsIDs(tgid, tid int) (string, string) {
	t, d := strconv.Itoa(tgid), strconv.Itoa(tid)
	b, err := os.ReadFile("/proc/" + d + "/status")
	if err != nil {
		return t, d
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "NStgid":
			t = f[len(f)-1]
		case "NSpid":
			d = f[len(f)-1]
		}
	}
	return t, d
}

// missing describes a final component that does not exist yet.
func (c *walkCtx) missing(dirfd int, name string) (Object, error) {
	dir, err := c.describe(dirfd)
	if err != nil {
		return Object{}, err
	}
	if dir.Mode&unix.S_IFMT != unix.S_IFDIR {
		return Object{}, unix.ENOTDIR
	}
	p := dir.Path
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return Object{Path: p + name, Exists: false, Dev: dir.Dev, Ino: dir.Ino}, nil
}

func isProc(fd int) bool {
	var sfs unix.Statfs_t
	return unix.Fstatfs(fd, &sfs) == nil && sfs.Type == unix.PROC_SUPER_MAGIC
}

func splitPath(p string) []string {
	parts := strings.Split(p, "/")
	out := parts[:0]
	for _, s := range parts {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
