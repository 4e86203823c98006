package emulate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// PrepareBindSocket fetches the watchee's socket sockfd for Bind, with
// pidfd_getfd, whatever its family (Domain). Like every preparation it must
// precede the caller's ID_VALID check. Errors are the watchee's answer (EBADF,
// ENOTSOCK) or ESRCH when it is gone.
func (e *Emulator) PrepareBindSocket(c Caller, sockfd int) (*Prepared, error) {
	p, err := e.begin(c, lookupSocket)
	if err != nil {
		return nil, err
	}
	defer p.endPrepare()
	if err := e.takeSocket(p, sockfd); err != nil {
		p.Close()
		return nil, err
	}
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
		if lent := e.lendViewMounts(parent, spelled); lent != noViewMounts {
			defer lent.close()
			in.obj2, in.parent2 = lent.clone, lent.proc
		}
	} else if spelled != "" {
		return errnoResult(0), fmt.Errorf("bind: %w: the AF_UNIX path %q needs its prepared parent", errMisuse, spelled)
	}
	if netlinkAutobind(sock.ObjectFd, addr) {
		return e.bindNetlinkAsWatchee(sock, &req, in)
	}
	return e.do(p, &req, in)
}

// viewMounts are the mounts of a bind's private view that vigil makes for a
// worker, -1 where it did not: clone is a detached clone of the parent's
// mount, proc a detached procfs for a spelling laid out with a magic link.
type viewMounts struct{ clone, proc int }

var noViewMounts = viewMounts{-1, -1}

func (m viewMounts) close() {
	for _, fd := range []int{m.clone, m.proc} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// lendViewMounts makes, for a bind that a worker in a user namespace of
// its own will perform in a private view, the mounts that worker may not
// make: cloning a mount needs CAP_SYS_ADMIN over the user namespace that
// owns its mount namespace, an ancestor of the watchee's when a container
// runs unshare -U, and a procfs needs privilege over vigil's pid namespace.
// vigil makes them on a thread of its own in the watchee's mount namespace
// and hands them over detached; the worker attaches them in its private
// namespace. A vigil that cannot (without root) lends nothing, and the
// worker's own attempt decides.
func (e *Emulator) lendViewMounts(parent *Prepared, spelled string) viewMounts {
	w, ok := parent.w.(*worker)
	if !ok || w.key.user == e.selfUser {
		return noViewMounts
	}
	lay, err := layOut(spelled)
	if err != nil || lay.mountAt == "" {
		return noViewMounts
	}
	var mntns *os.File
	if w.key.mnt != e.selfMnt {
		if mntns, err = e.openNS(parent.c.Tid, "mnt", w.key.mnt); err != nil {
			return noViewMounts
		}
		defer mntns.Close()
	}
	lent := noViewMounts
	if lay.link != "" {
		if lent.proc, err = mountDetached("proc"); err != nil {
			return noViewMounts
		}
	}
	if mntns == nil {
		lent.clone, _ = cloneMount(parent.ParentFd)
	} else {
		// A mount clones only from its own namespace: a thread that
		// joins the watchee's and then ends.
		offMainThread(func() {
			if unix.Unshare(unix.CLONE_FS) == nil && unix.Setns(int(mntns.Fd()), unix.CLONE_NEWNS) == nil {
				lent.clone, _ = cloneMount(parent.ParentFd)
			}
		})
	}
	if lent.clone < 0 {
		lent.close()
		return noViewMounts
	}
	return lent
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
	// No validity check of its own: the caller's ID_VALID preceded Bind,
	// and a tid recycled since would only choose the port id.
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
// lent holds the mounts vigil made for the view (lendViewMounts), which
// stay the caller's.
func bindInPrivateView(sock, parent int, spelled string, addr []byte, c *wireCred, lent viewMounts) response {
	var r response
	offMainThread(func() { r = bindOnOwnThread(sock, parent, spelled, addr, c, lent) })
	return r
}

func bindOnOwnThread(sock, parent int, spelled string, addr []byte, c *wireCred, lent viewMounts) response {
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
	} else {
		held, err := enterSkeleton(w, parent, lay, c, lent)
		if errors.Is(err, errNoPrivateView) {
			return unsupported(err.Error())
		}
		if err != nil {
			return internal(err)
		}
		if held >= 0 {
			// The link's target: open until the bind is done.
			defer unix.Close(held)
		}
	}
	if c.SetGroups {
		// Only when they differ: setgroups needs CAP_SETGID even to
		// change nothing, which a vigil without root lacks.
		if cur, err := unix.Getgroups(); err != nil || groupsKey32(cur) != groupsKey32(c.Groups) {
			if err := unix.Setgroups(c.Groups); err != nil {
				return internal(fmt.Errorf("setgroups: %w", err))
			}
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

// errNoPrivateView reports that the executing thread's privilege does not
// reach far enough to lay out the private view a spelling needs; the bind is
// refused with the reason rather than performed in the watchee's view.
var errNoPrivateView = errors.New("an AF_UNIX path with directories needs a private view of the watchee's mounts, which this user namespace may not make")

// enterSkeleton gives the calling thread a private mount namespace whose
// root is a new tmpfs holding lay's directories, with a clone of the held
// parent's mount on lay.mountAt, and the cwd lay.cwd for a relative path.
// The tmpfs's directories are the watchee's. The clone is taken first,
// while the thread still shares the namespace the parent was resolved in (a
// mount of another namespace cannot be cloned). For lay.link it returns the
// descriptor its magic link names, which must stay open until the bind;
// -1 otherwise.
func enterSkeleton(w *workerState, parent int, lay layout, c *wireCred, lent viewMounts) (int, error) {
	held, err := enterSkeletonRoot(w, parent, lay, c, lent)
	if err != nil && held >= 0 {
		unix.Close(held)
		held = -1
	}
	return held, err
}

func enterSkeletonRoot(w *workerState, parent int, lay layout, c *wireCred, lent viewMounts) (int, error) {
	clone := lent.clone
	if clone < 0 {
		var err error
		if clone, err = cloneMount(parent); err != nil {
			return -1, err
		}
		defer unix.Close(clone)
	}
	if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
		return -1, fmt.Errorf("unshare(CLONE_NEWNS): %w", err)
	}
	// Nothing mounted here may propagate to the namespace it came from.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return -1, fmt.Errorf("making the private namespace's mounts private: %w", err)
	}
	mnt, err := mountNew("tmpfs", "/")
	if err != nil {
		return -1, err
	}
	defer unix.Close(mnt)
	if err := unix.Fchdir(mnt); err != nil {
		return -1, fmt.Errorf("entering the tmpfs: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return -1, fmt.Errorf("chroot to the tmpfs: %w", err)
	}
	// The directories are made as the watchee, whose ids the executor's
	// user namespace maps (the executor's own may be unmapped there), and
	// open to it (umask 0).
	if err := setFsIDs(c.Fsuid, c.Fsgid); err != nil {
		return -1, err
	}
	if err := w.setCaps(uint64(w.perm[0]) | uint64(w.perm[1])<<32); err != nil {
		return -1, fmt.Errorf("regaining capabilities: %w", err)
	}
	unix.Umask(0)
	for _, d := range lay.dirs {
		if err := unix.Mkdir(d, 0o755); err != nil && err != unix.EEXIST {
			return -1, fmt.Errorf("laying out %s: %w", d, err)
		}
	}
	held := -1
	if lay.link != "" {
		var err error
		if held, err = linkThroughProc(lay, lent.proc); err != nil {
			return held, err
		}
	}
	// The cwd is taken before the mount goes on: a cwd below the mount
	// point stays in the tmpfs.
	if err := unix.Chdir(lay.cwd); err != nil {
		return held, fmt.Errorf("entering %s: %w", lay.cwd, err)
	}
	if err := unix.MoveMount(clone, "", unix.AT_FDCWD, lay.mountAt, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return held, fmt.Errorf("mounting the parent on %s: %w", lay.mountAt, err)
	}
	return held, nil
}

// cloneMount returns a detached clone of the mount that holds the directory
// parent, which must be in the calling thread's mount namespace.
func cloneMount(parent int) (int, error) {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC | unix.AT_EMPTY_PATH)
	clone, err := unix.OpenTree(parent, "", flags)
	if err == unix.EINVAL {
		// Mounts below the parent that a user namespace locked refuse a
		// clone of the parent's mount alone; the whole subtree clones.
		clone, err = unix.OpenTree(parent, "", flags|unix.AT_RECURSIVE)
	}
	if err == unix.EPERM {
		// Cloning a mount needs CAP_SYS_ADMIN over its namespace's owner,
		// which a worker in a user namespace below that owner lacks
		// (unshare -U inside a container) unless vigil lent the clone.
		return -1, fmt.Errorf("%w: cloning the parent's mount: %w", errNoPrivateView, err)
	}
	if err != nil {
		return -1, fmt.Errorf("cloning the parent's mount: %w", err)
	}
	return clone, nil
}

// linkThroughProc mounts procfs on lay.procAt and makes lay.link a symlink
// to the magic link of a descriptor of lay.linkTo, which it returns. The
// kernel follows a magic link to the very directory the descriptor holds,
// not by name. The thread's own /proc/thread-self names the descriptor
// for any credentials (same thread group). A procfs mount needs privilege
// over vigil's pid namespace, which a worker in a user namespace lacks:
// it attaches the detached procfs vigil lent (proc), and without one
// refuses such spellings.
func linkThroughProc(lay layout, proc int) (int, error) {
	if err := unix.Mkdir(lay.procAt, 0o555); err != nil {
		return -1, fmt.Errorf("laying out %s: %w", lay.procAt, err)
	}
	if proc >= 0 {
		if err := unix.MoveMount(proc, "", unix.AT_FDCWD, lay.procAt, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return -1, fmt.Errorf("mounting procfs on %s: %w", lay.procAt, err)
		}
	} else {
		mnt, err := mountNew("proc", lay.procAt)
		if errors.Is(err, unix.EPERM) {
			return -1, fmt.Errorf("%w: %w", errNoPrivateView, err)
		}
		if err != nil {
			return -1, err
		}
		unix.Close(mnt)
	}
	held, err := unix.Open(lay.linkTo, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening %s: %w", lay.linkTo, err)
	}
	if err := unix.Symlink(lay.procAt+"/thread-self/fd/"+strconv.Itoa(held), lay.link); err != nil {
		return held, fmt.Errorf("linking %s: %w", lay.link, err)
	}
	return held, nil
}

// mountNew makes a new filesystem of type fstype and attaches it on target
// in the calling thread's mount namespace. It returns the mount's
// descriptor (its root), which the caller closes.
func mountNew(fstype, target string) (int, error) {
	mnt, err := mountDetached(fstype)
	if err != nil {
		return -1, err
	}
	if err := unix.MoveMount(mnt, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		unix.Close(mnt)
		return -1, fmt.Errorf("mounting %s on %s: %w", fstype, target, err)
	}
	return mnt, nil
}

// mountDetached makes a new filesystem of type fstype and returns its
// mount, attached nowhere yet.
func mountDetached(fstype string) (int, error) {
	fs, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen(%s): %w", fstype, err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("creating a %s: %w", fstype, err)
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("fsmount(%s): %w", fstype, err)
	}
	return mnt, nil
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
	// link, when set, is made a symlink to a /proc magic link of the tmpfs
	// directory linkTo, opened before the mount goes on; procAt is where
	// procfs is mounted for it. A walk that comes back to its end by ".."
	// after passing it (a/b/../sock) needs the end's second visit to be
	// another directory than the first: the link leads the walk to linkTo,
	// whose ".." is linkTo's own parent, where the mount goes.
	link, linkTo, procAt string
}

// skeletonCwd is the cwd of a relative lookup in the private root.
const skeletonCwd = "/cwd"

// errSpelling reports a spelling whose directory part cannot be laid out.
var errSpelling = errors.New("the socket path's directory part cannot be laid out without a lookup in the socket's directory")

// layOut lays out the directory part of spelled (everything before its last
// component) so that the kernel's walk of it, from the tmpfs root or
// skeletonCwd, looks nothing up in the watchee's directory and ends on the
// mount of it: the walk (walkSkeleton) follows "." (dropped), ".." (up, not
// above the root) and names (down) through tmpfs directories. When the
// walk arrives at its end before the last step and goes on with a name
// (/a/b/../sock: at /a, then b), one directory the walk names is made a
// link to another place (see layout.link); a spelling no single link
// mends is refused, as are names longer than the kernel allows.
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
		switch {
		case s == "" || s == ".":
		case len(s) > 255:
			return lay, unix.ENAMETOOLONG
		default:
			steps = append(steps, s)
		}
	}
	if len(steps) == 0 {
		return lay, nil
	}
	lay.cwd = skeletonCwd
	if lay.absolute {
		lay.cwd = "/"
	}
	w := walkSkeleton(lay.cwd, steps, "", "")
	if w.ok {
		lay.dirs, lay.mountAt = w.dirs, w.end
		return lay, nil
	}
	// One link: to a directory under a name of the root no step uses.
	f := unusedRootName(lay.cwd, steps, "/.vigil-link")
	for _, c := range w.named {
		lw := walkSkeleton(lay.cwd, steps, c, f+"/d")
		if lw.ok {
			lay.dirs, lay.mountAt, lay.link, lay.linkTo = lw.dirs, lw.end, c, f+"/d"
			lay.procAt = unusedRootName(lay.cwd, steps, "/.vigil-proc")
			return lay, nil
		}
	}
	return lay, errSpelling
}

// skeletonWalk is what walkSkeleton found.
type skeletonWalk struct {
	dirs  []string // the directories to make, parents first
	end   string   // where the walk ends: the mount point
	named []string // the directories reached by a name, first reach first
	ok    bool
}

// walkSkeleton walks steps from start through tmpfs directories as the
// kernel does, a name equal to link jumping to linkTo (a magic link, which
// lands on the directory itself, under any mount on it). The walk is
// usable (ok) when it ends by arriving at its end, by a name or "..", and
// every earlier arrival there (where the kernel steps into the mount, into
// the watchee's directory) is followed by "..", which climbs back out, and
// is not the link's jump.
func walkSkeleton(start string, steps []string, link, linkTo string) skeletonWalk {
	type arrival struct {
		at   string
		jump bool
	}
	var w skeletonWalk
	arrivals := make([]arrival, 0, len(steps))
	reached := map[string]bool{}
	cur := start
	for _, s := range steps {
		if s == ".." {
			cur = parentDir(cur)
			arrivals = append(arrivals, arrival{cur, false})
			continue
		}
		next := strings.TrimSuffix(cur, "/") + "/" + s
		if link != "" && next == link {
			cur = linkTo
			arrivals = append(arrivals, arrival{cur, true})
			continue
		}
		cur = next
		arrivals = append(arrivals, arrival{cur, false})
		if !reached[cur] {
			reached[cur] = true
			w.named = append(w.named, cur)
		}
	}
	w.end = cur
	last := len(arrivals) - 1
	if arrivals[last].jump {
		return w
	}
	for i := 0; i < last; i++ {
		if arrivals[i].at == w.end && (arrivals[i].jump || steps[i+1] != "..") {
			return w
		}
	}
	seen := map[string]bool{"/": true}
	add := func(p string) {
		for i := 1; i <= len(p); i++ {
			if i == len(p) || p[i] == '/' {
				if d := p[:i]; !seen[d] {
					seen[d] = true
					w.dirs = append(w.dirs, d)
				}
			}
		}
	}
	add(start)
	for _, a := range arrivals {
		add(a.at)
	}
	if linkTo != "" {
		add(linkTo)
	}
	// The link is a symlink, never a directory on the way.
	w.ok = link == "" || !seen[link]
	return w
}

// parentDir is the tmpfs directory ".." leads to from dir.
func parentDir(dir string) string {
	if i := strings.LastIndexByte(dir, '/'); i > 0 {
		return dir[:i]
	}
	return "/"
}

// unusedRootName returns base, or base with a number, that no step of a
// walk from start names in the root.
func unusedRootName(start string, steps []string, base string) string {
	used := map[string]bool{start: true}
	cur := start
	for _, s := range steps {
		if s == ".." {
			cur = parentDir(cur)
			continue
		}
		cur = strings.TrimSuffix(cur, "/") + "/" + s
		used[cur] = true
	}
	name := base
	for n := 2; used[name]; n++ {
		name = base + strconv.Itoa(n)
	}
	return name
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
	return bindOwnSocket(parent, filepath.Join(dir, "d", "s"))
}

// bindOwnSocket binds a new AF_UNIX socket of vigil's to spelled through
// bindInPrivateView, with vigil's own credentials, parent holding the
// directory spelled names, and checks the name the socket got and the
// socket file in parent.
func bindOwnSocket(parent int, spelled string) error {
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(sock)
	if len(spelled) >= len(unix.RawSockaddrUnix{}.Path) {
		return fmt.Errorf("path %q too long for a socket", spelled)
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
	switch r := bindInPrivateView(sock, parent, spelled, addr, &cred, noViewMounts); {
	case r.Status == statusUnsupported:
		return fmt.Errorf("%w: %s", ErrUnsupported, r.Msg)
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
	name := lastComponentOf(spelled)
	if err := unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("no socket file %q in the parent (%v)", name, err)
	}
	return nil
}

// lastComponentOf is spelled's last component, trailing slashes dropped.
func lastComponentOf(spelled string) string {
	t := strings.TrimRight(spelled, "/")
	return t[strings.LastIndexByte(t, '/')+1:]
}
