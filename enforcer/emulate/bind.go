package emulate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// PrepareBindSocket fetches the watchee's socket sockfd for Bind, with
// pidfd_getfd, whatever its family. Like every preparation it must precede
// the caller's ID_VALID check. Errors are the watchee's answer (EBADF,
// ENOTSOCK) or ESRCH when it is gone.
func (e *Emulator) PrepareBindSocket(c Caller, sockfd int) (*Prepared, error) {
	p, err := e.begin(c, lookupSocket)
	if err != nil {
		return nil, err
	}
	defer p.endPrepare()
	if p.ObjectFd, err = e.getFd(c, sockfd); err != nil {
		p.Close()
		return nil, err
	}
	if _, err := unix.GetsockoptInt(p.ObjectFd, unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil {
		p.Close()
		if err == unix.ENOTSOCK {
			return nil, unix.ENOTSOCK
		}
		return nil, fmt.Errorf("reading the socket's domain: %w", err)
	}
	p.Exists, p.Mode = true, unix.S_IFSOCK
	p.st.Mode = p.Mode
	return p, nil
}

// Bind performs bind(2) on the socket sock holds (PrepareBindSocket) with
// addr, the sockaddr bytes vigil read and vetted, with the watchee's
// credentials: CAP_NET_BIND_SERVICE for a low port, CAP_NET_ADMIN for
// netlink groups, the owner, mode (umask) and default ACL of a socket file
// are the kernel's doing as for the watchee.
//
// For an AF_UNIX pathname address, parent is the directory the socket file
// is made in (PrepareAt with LookupParent of spelled, the address's path),
// and nil otherwise. bind(2) has no *at form: the kernel looks the path up
// itself and keeps the spelling as the socket's name, which getsockname,
// getpeername on the other end, /proc/net/unix and Go's UnixListener.Close
// (which unlinks that name) read back. So the bind runs on a thread of its
// own whose root (or cwd, for a relative path) is a private tmpfs laid out
// so that the spelled directory leads through vigil's own directories to a
// clone of the held parent's mount (bindInPrivateView): the spelling is
// kept and no component can be swapped under it. nil parent with a pathname
// address is a misuse.
func (e *Emulator) Bind(sock, parent *Prepared, spelled string, addr []byte) (Result, error) {
	if err := sock.check(lookupSocket); err != nil {
		return errnoResult(0), fmt.Errorf("bind: %w", err)
	}
	req := request{Op: opBind, Value: addr}
	in := objectIn(sock)
	p := sock
	if parent != nil {
		if err := parent.check(LookupParent); err != nil {
			return errnoResult(0), fmt.Errorf("bind: %w", err)
		}
		req.Path = spelled
		in.parent, p = parent.ParentFd, parent
	} else if spelled != "" {
		return errnoResult(0), fmt.Errorf("bind: %w: the AF_UNIX path %q needs its prepared parent", errMisuse, spelled)
	}
	if netlinkAutobind(sock.ObjectFd, addr) {
		return e.bindNetlinkAsWatchee(sock, &req, in)
	}
	return e.do(p, &req, in)
}

// sockaddr_nl: family (2 bytes), padding (2), nl_pid (4), nl_groups (4).
const (
	sizeofSockaddrNL = 12
	nlPidOffset      = 4
)

// netlinkAutobind reports whether binding fd to addr would make the kernel
// pick the socket's port id: a netlink address with nl_pid 0 for a socket
// not bound yet (a bound one answers EINVAL, which the plain bind gives).
func netlinkAutobind(fd int, addr []byte) bool {
	if len(addr) < sizeofSockaddrNL || binary.NativeEndian.Uint16(addr) != unix.AF_NETLINK ||
		binary.NativeEndian.Uint32(addr[nlPidOffset:]) != 0 {
		return false
	}
	sa, err := unix.Getsockname(fd)
	nl, ok := sa.(*unix.SockaddrNetlink)
	return err == nil && ok && nl.Pid == 0
}

// bindNetlinkAsWatchee binds a netlink socket to the port id the kernel
// would have picked for the watchee: its tgid in its own pid namespace,
// or, when another socket holds that, a random negative one in the range
// the kernel draws from (net/netlink/af_netlink.c, netlink_autobind). A
// plain autobind from vigil's thread or worker would take theirs.
func (e *Emulator) bindNetlinkAsWatchee(sock *Prepared, req *request, in fdSet) (Result, error) {
	st, err := e.readSendCreds(sock.c, func() error { return nil }, false)
	if err != nil {
		return errnoResult(0), err
	}
	req.Value = append([]byte(nil), req.Value...)
	portid := uint32(st.nsTgid)
	for try := 0; ; try++ {
		binary.NativeEndian.PutUint32(req.Value[nlPidOffset:], portid)
		r, err := e.do(sock, req, in)
		if err != nil || r.Errno != unix.EADDRINUSE || try == 64 {
			return r, err
		}
		// [S32_MIN, -4097], as the kernel's rover.
		portid = uint32(int32(math.MinInt32 + rand.Int64N(-4096-math.MinInt32)))
	}
}

// bindInPrivateView binds sock to addr, an AF_UNIX pathname address spelled
// spelled, so that the socket file is made in the directory parent holds.
// It runs on a thread that never serves Go code again (offMainThread): the
// thread takes a private fs_struct and, when spelled has
// directories, a private mount namespace; everything else keeps its view.
func bindInPrivateView(sock, parent int, spelled string, addr []byte, c *wireCred) response {
	var r response
	offMainThread(func() { r = bindOnOwnThread(sock, parent, spelled, addr, c) })
	return r
}

func bindOnOwnThread(sock, parent int, spelled string, addr []byte, c *wireCred) response {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return internal(fmt.Errorf("capget: %w", err))
	}
	w := &workerState{perm: [2]uint32{data[0].Permitted, data[1].Permitted}}
	full := uint64(w.perm[0]) | uint64(w.perm[1])<<32
	if err := w.setCaps(full); err != nil {
		return internal(fmt.Errorf("regaining capabilities: %w", err))
	}
	lay, err := layOut(spelled)
	if err != nil {
		return unsupported(err.Error())
	}
	if lay.mountAt == "" {
		// A bare name, or a name in the root: the parent itself is the
		// cwd, or the root.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return internal(fmt.Errorf("unshare(CLONE_FS): %w", err))
		}
		if err := unix.Fchdir(parent); err != nil {
			return internal(fmt.Errorf("entering the parent: %w", err))
		}
		if lay.absolute {
			if err := unix.Chroot("."); err != nil {
				return internal(fmt.Errorf("chroot to the parent: %w", err))
			}
		}
	} else if err := enterSkeleton(w, parent, lay, c); err != nil {
		return internal(err)
	}
	if c.SetGroups {
		if err := unix.Setgroups(c.Groups); err != nil {
			return internal(fmt.Errorf("setgroups: %w", err))
		}
	}
	if err := setFsIDs(c.Fsuid, c.Fsgid); err != nil {
		return internal(err)
	}
	unix.Umask(int(c.Umask))
	if err := w.setCaps(c.CapEff & full); err != nil {
		return internal(fmt.Errorf("taking on the watchee's capabilities: %w", err))
	}
	return errnoResp(rawBind(sock, addr))
}

// enterSkeleton gives the calling thread a private mount namespace whose
// root is a new tmpfs holding lay's directories, with a clone of the held
// parent's mount on lay.mountAt, and the cwd lay.cwd for a relative path.
// The tmpfs's directories are the watchee's. The clone is taken first, while the thread still shares the namespace the
// parent was resolved in (a mount of another namespace cannot be cloned).
func enterSkeleton(w *workerState, parent int, lay layout, c *wireCred) error {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC | unix.AT_EMPTY_PATH)
	clone, err := unix.OpenTree(parent, "", flags)
	if err == unix.EINVAL {
		// Mounts below the parent that a user namespace locked refuse a
		// clone of the parent's mount alone; the whole subtree clones.
		clone, err = unix.OpenTree(parent, "", flags|unix.AT_RECURSIVE)
	}
	if err != nil {
		return fmt.Errorf("cloning the parent's mount: %w", err)
	}
	defer unix.Close(clone)
	if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare(CLONE_NEWNS): %w", err)
	}
	// Nothing mounted here may propagate to the namespace it came from.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making the private namespace's mounts private: %w", err)
	}
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen(tmpfs): %w", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigCreate(fs); err != nil {
		return fmt.Errorf("creating a tmpfs: %w", err)
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fsmount(tmpfs): %w", err)
	}
	defer unix.Close(mnt)
	if err := unix.MoveMount(mnt, "", unix.AT_FDCWD, "/", unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attaching the tmpfs: %w", err)
	}
	if err := unix.Fchdir(mnt); err != nil {
		return fmt.Errorf("entering the tmpfs: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot to the tmpfs: %w", err)
	}
	// The directories are made as the watchee, whose ids the executor's
	// user namespace maps (the executor's own may be unmapped there), and
	// open to it (umask 0).
	if err := setFsIDs(c.Fsuid, c.Fsgid); err != nil {
		return err
	}
	if err := w.setCaps(uint64(w.perm[0]) | uint64(w.perm[1])<<32); err != nil {
		return fmt.Errorf("regaining capabilities: %w", err)
	}
	unix.Umask(0)
	for _, d := range lay.dirs {
		if err := unix.Mkdir(d, 0o755); err != nil && err != unix.EEXIST {
			return fmt.Errorf("laying out %s: %w", d, err)
		}
	}
	// The cwd is taken before the mount goes on: a cwd below the mount
	// point stays in the tmpfs.
	if err := unix.Chdir(lay.cwd); err != nil {
		return fmt.Errorf("entering %s: %w", lay.cwd, err)
	}
	if err := unix.MoveMount(clone, "", unix.AT_FDCWD, lay.mountAt, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mounting the parent on %s: %w", lay.mountAt, err)
	}
	return nil
}

// layout is where a private root puts the held parent so that the kernel's
// lookup of a spelled AF_UNIX path ends in it.
type layout struct {
	absolute bool
	// dirs are the tmpfs directories to make, parents first.
	dirs []string
	// mountAt is the directory the parent's mount goes on, "" when the
	// parent itself is the cwd (a bare name) or the root.
	mountAt string
	// cwd is where a relative lookup starts ("/" for an absolute one).
	cwd string
}

// skeletonCwd is the cwd of a relative lookup in the private root.
const skeletonCwd = "/cwd"

// errSpelling reports a spelling whose directory part cannot be laid out.
var errSpelling = errors.New("the socket path's directory part reaches the directory it ends in before its end")

// layOut walks the directory part of spelled (everything before its last
// component) as the kernel does in a tree without symlinks: "." stays, ".."
// goes up (not above the root), a name goes down. Every node the walk
// visits becomes a tmpfs directory and the last one the mount point. The
// kernel steps into a mount whenever a lookup arrives at its mount point
// (by a name or by ".."), so a name looked up after the walk arrived at the
// mount point would be looked up in the watchee's directory, by name: a
// spelling that arrives at its end before the last step and goes on with a
// name (d/e/../../d/sock, /a/b/../sock) is refused, as are names longer
// than the kernel allows. Leaving the end by ".." only is fine: the kernel
// steps back out of the mount (a/b/../b/sock).
func layOut(spelled string) (layout, error) {
	lay := layout{absolute: strings.HasPrefix(spelled, "/")}
	dir := strings.TrimRight(spelled, "/")
	if i := strings.LastIndexByte(dir, '/'); i >= 0 {
		dir = dir[:i]
	} else {
		dir = ""
	}
	var steps []string
	for _, s := range strings.Split(dir, "/") {
		if s != "" && s != "." {
			steps = append(steps, s)
		}
	}
	if len(steps) == 0 {
		return lay, nil
	}
	start := skeletonCwd
	if lay.absolute {
		start = "/"
	}
	lay.cwd = start
	nodes := []string{start}
	cur := start
	for _, s := range steps {
		switch {
		case s == "..":
			if cur != "/" {
				cur = cur[:strings.LastIndexByte(cur, '/')]
				if cur == "" {
					cur = "/"
				}
			}
		case len(s) > 255:
			return lay, unix.ENAMETOOLONG
		default:
			cur = strings.TrimSuffix(cur, "/") + "/" + s
		}
		nodes = append(nodes, cur)
	}
	end := nodes[len(nodes)-1]
	for i := 1; i < len(nodes)-1; i++ {
		if nodes[i] == end && steps[i] != ".." {
			return lay, errSpelling
		}
	}
	lay.mountAt = end
	seen := map[string]bool{"/": true}
	for _, n := range nodes {
		if !seen[n] {
			seen[n] = true
			lay.dirs = append(lay.dirs, n)
		}
	}
	return lay, nil
}

// ProbeBind performs one AF_UNIX bind the way Bind performs a path with
// directories — a private mount namespace, a tmpfs root, a clone of the
// parent's mount — for a socket of vigil's own in a temporary directory,
// and checks that the socket kept its spelled name and its file is in the
// parent: `vigil doctor`'s probe of what such binds need (root, open_tree,
// fsopen, move_mount; Linux 5.2).
func ProbeBind() error {
	dir, err := os.MkdirTemp("", "vigil-doctor-bind-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		return err
	}
	parent, err := unix.Open(filepath.Join(dir, "d"), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(sock)
	spelled := filepath.Join(dir, "d", "s")
	if len(spelled) >= len(unix.RawSockaddrUnix{}.Path) {
		return fmt.Errorf("temporary path %q too long for a socket", spelled)
	}
	addr := binary.NativeEndian.AppendUint16(nil, unix.AF_UNIX)
	addr = append(addr, spelled...)
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if err := unix.Capget(&hdr, &caps[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	cred := wireCred{Fsuid: uint32(os.Geteuid()), Fsgid: uint32(os.Getegid()), Umask: 0o022,
		CapEff: uint64(caps[0].Effective) | uint64(caps[1].Effective)<<32}
	switch r := bindInPrivateView(sock, parent, spelled, addr, &cred); {
	case r.Status != statusOK:
		return errors.New(r.Msg)
	case r.Errno != 0:
		return fmt.Errorf("bind: %w", unix.Errno(r.Errno))
	}
	sa, err := unix.Getsockname(sock)
	if ua, ok := sa.(*unix.SockaddrUnix); err != nil || !ok || ua.Name != spelled {
		return fmt.Errorf("the socket's name is %v (%v), not %q", sa, err, spelled)
	}
	var st unix.Stat_t
	if err := unix.Lstat(spelled, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("no socket file at %s (%v)", spelled, err)
	}
	return nil
}
