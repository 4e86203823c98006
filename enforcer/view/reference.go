package view

import (
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/procinfo"
)

// Errors Name returns. Every one of them means "no reference name": the
// caller fails closed.
var (
	// ErrNoName: the object's mount cannot be located, or the mount
	// topology kept changing while the name was computed.
	ErrNoName = errors.New("the object has no name vigil can establish in the reference view")
	// ErrStacked: the object is on a stacking filesystem (overlayfs...)
	// mounted after supervision began.
	ErrStacked = errors.New("the object is on a stacking filesystem (overlay) mounted after supervision began, whose layers vigil cannot name")
	// ErrNeedParent: the object is a non-directory on a mount that is not
	// in the reference view, and the caller did not say which directory it
	// was found in. Resolve again keeping the parent.
	ErrNeedParent = errors.New("naming the object needs the directory it was found in")
)

// Reference is a captured reference view. It is safe for concurrent use.
type Reference struct {
	rootfd   int
	rootPath string
	// pidfd and pid identify a process whose mountinfo shows the reference
	// namespace from the reference root (vigil itself when own).
	pid   int
	pidfd int
	own   bool
	snap  map[int]Mount
	bySB  map[uint64][]Mount

	gen     atomic.Uint64
	settled atomic.Bool
	// renumbered: a watchee may have created mounts (Renumber). A mount of
	// the reference view may since have gone (unmounted by a process vigil
	// does not watch) and its id been taken by one of them, in another
	// namespace: from then on a captured id counts only while the live
	// reference namespace still shows it as captured.
	renumbered atomic.Bool

	mu       sync.Mutex
	cacheGen uint64
	cache    map[int]cachedMount // live mounts by id, valid for cacheGen
	// graveyard keeps the lines of older generations: a mount unmounted
	// with MNT_DETACH lives on, out of every table, while a descriptor
	// holds it (see buried).
	graveyard map[int]cachedMount
	liveRef   map[int]Mount // the reference namespace's live mounts, valid for cacheGen
}

// Own captures vigil's own view as the reference.
func Own() (*Reference, error) { return Capture(os.Getpid()) }

// Capture captures the view of process pid — its root directory and the
// mounts of its mount namespace visible from there — as the reference.
func Capture(pid int) (*Reference, error) {
	p := "/proc/" + strconv.Itoa(pid)
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("opening pidfd of %d: %w", pid, err)
	}
	rootfd, err := unix.Open(p+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(pidfd)
		return nil, fmt.Errorf("opening the reference root of %d: %w", pid, err)
	}
	r := &Reference{rootfd: rootfd, pid: pid, pidfd: pidfd}
	fail := func(err error) (*Reference, error) {
		r.Close()
		return nil, err
	}
	if r.rootPath, err = readlinkFd(rootfd); err != nil {
		return fail(fmt.Errorf("reading the reference root of %d: %w", pid, err))
	}
	b, err := os.ReadFile(p + "/mountinfo")
	if err != nil {
		return fail(fmt.Errorf("reading the mounts of %d: %w", pid, err))
	}
	mounts, err := ParseMountinfo(b)
	if err != nil {
		return fail(fmt.Errorf("reading the mounts of %d: %w", pid, err))
	}
	if !processAlive(pidfd) {
		return fail(fmt.Errorf("process %d exited while its view was captured", pid))
	}
	// A root that is a plain directory (a chroot, not a mount's root) lies
	// on a mount its mount table does not show: the table lists only mounts
	// beneath the root. Objects on that mount are named by the kernel's
	// path from the root like any other; it has no known place in its
	// filesystem, so the slow mapping never uses it.
	var stx unix.Statx_t
	if err := unix.Statx(rootfd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx); err == nil && stx.Mask&unix.STATX_MNT_ID != 0 {
		id := int(stx.Mnt_id)
		found := false
		for _, m := range mounts {
			found = found || m.ID == id
		}
		if !found {
			mounts = append(mounts, Mount{ID: id, Dev: unix.Mkdev(stx.Dev_major, stx.Dev_minor), Point: "/"})
		}
	}
	r.index(mounts)
	r.own = sameFile("/proc/self/ns/mnt", p+"/ns/mnt") && sameFile("/proc/self/root", p+"/root")
	r.settled.Store(true)
	return r, nil
}

func (r *Reference) index(mounts []Mount) {
	r.snap = make(map[int]Mount, len(mounts))
	r.bySB = make(map[uint64][]Mount)
	for _, m := range mounts {
		r.snap[m.ID] = m
		r.bySB[m.Dev] = append(r.bySB[m.Dev], m)
	}
	for _, l := range r.bySB {
		// The deepest mount root wins: it names the object by the mount
		// that shows exactly that subtree (a bind mount of /srv/www at
		// /www names /srv/www/x as /www/x only if nothing shows /srv).
		sort.SliceStable(l, func(i, j int) bool { return len(l[i].Root) > len(l[j].Root) })
	}
}

// Close releases the reference root.
func (r *Reference) Close() {
	if r.rootfd >= 0 {
		unix.Close(r.rootfd)
		r.rootfd = -1
	}
	if r.pidfd >= 0 {
		unix.Close(r.pidfd)
		r.pidfd = -1
	}
}

// Root returns the reference root's identity: its device (userspace
// st_dev), inode and mount id.
func (r *Reference) Root() (dev, ino uint64, mnt int, err error) {
	var stx unix.Statx_t
	if err := unix.Statx(r.rootfd, "", unix.AT_EMPTY_PATH, unix.STATX_INO|unix.STATX_MNT_ID, &stx); err != nil {
		return 0, 0, 0, fmt.Errorf("stat of the reference root: %w", err)
	}
	return unix.Mkdev(stx.Dev_major, stx.Dev_minor), stx.Ino, int(stx.Mnt_id), nil
}

// Own reports whether the reference is vigil's own view (vigil's root and
// mount namespace).
func (r *Reference) Own() bool { return r.own }

// Unsettle records that a watchee may have changed a mount topology (mount,
// umount, move, pivot_root, a new mount namespace): from now on the kernel's
// path of an object is trusted only for mounts that provably still sit where
// they were captured. Call it before answering the call that may change the
// topology.
func (r *Reference) Unsettle() {
	r.gen.Add(1)
	r.settled.Store(false)
}

// Renumber records that a watchee may create mounts (a mount, a tree clone,
// a copy of a mount namespace): the kernel gives a new mount the lowest free
// id, which may be that of a mount vigil read of and that is gone since, so
// what vigil read of live mount tables is dropped. Names already computed
// and the reference view itself stay. Call it before answering the call.
func (r *Reference) Renumber() {
	r.renumbered.Store(true)
	r.gen.Add(1)
}

// Settled reports whether no watchee has changed a mount topology since the
// capture.
func (r *Reference) Settled() bool { return r.settled.Load() }

// Fast reports whether the kernel's path of an object on mount id is its
// reference name with no further check: the reference view captured that
// mount and no watchee has changed a mount topology since (once a watchee
// may have created mounts, the live reference namespace must also still
// show that mount as captured). Check it after the lookup that found the
// object: a change announced in between then reads as unsettled.
func (r *Reference) Fast(id int) bool {
	if !r.settled.Load() {
		return false
	}
	m, ok := r.snap[id]
	return ok && r.asCaptured(m)
}

// asCaptured reports whether captured mount m is still where the reference
// view has it.
func (r *Reference) asCaptured(m Mount) bool {
	return (r.settled.Load() && !r.renumbered.Load()) || r.unmoved(m)
}

// Object is what Name names.
type Object struct {
	// Fd is any descriptor of the object (O_PATH is fine), as vigil holds it
	// after resolving the watchee's path in the watchee's view.
	Fd int
	// Stx is Fd's statx with at least STATX_MNT_ID and STATX_TYPE|STATX_NLINK.
	Stx *unix.Statx_t
	// Parent is the directory the object was found in and Base its name
	// there, when known (-1 otherwise). Only non-directories on mounts
	// outside the reference view need them.
	Parent int
	Base   string
	// Tid is the watchee thread whose view the object was resolved in.
	Tid int
	// WatcheeRoot, when set, returns how vigil reads the path of the
	// watchee's root directory; it names objects outside the reference view.
	WatcheeRoot func() string
}

// StatxMask is what Name needs of Object.Stx.
const StatxMask = unix.STATX_TYPE | unix.STATX_MODE | unix.STATX_NLINK | unix.STATX_INO | unix.STATX_MNT_ID

// Name returns the object's name in the reference view.
func (r *Reference) Name(o *Object) (string, error) {
	for try := 0; try < 4; try++ {
		g := r.gen.Load()
		name, err := r.name(o)
		if r.gen.Load() == g {
			return name, err
		}
		// A topology change was announced meanwhile: what was read may
		// mix the old and the new layout.
	}
	return "", ErrNoName
}

func (r *Reference) name(o *Object) (string, error) {
	link, err := readlinkFd(o.Fd)
	if err == unix.ENAMETOOLONG {
		if link, err = longLink(o); errors.Is(err, ErrNeedParent) {
			return "", err
		}
	}
	if err != nil {
		return "", fmt.Errorf("%w: reading its path: %v", ErrNoName, err)
	}
	if link == "" || link[0] != '/' {
		// pipe:[N], socket:[N], anon_inode:[...]: no path to name.
		return link, nil
	}
	if o.Stx.Nlink == 0 {
		link = strings.TrimSuffix(link, " (deleted)")
	}
	if o.Stx.Mask&unix.STATX_MNT_ID == 0 {
		return "", fmt.Errorf("%w: the kernel reports no mount id (Linux < 5.8)", ErrNoName)
	}
	id := int(o.Stx.Mnt_id)
	if m, ok := r.snap[id]; ok && r.asCaptured(m) {
		return r.fromVigil(link), nil
	}
	if internalMounts()[id] {
		// A memfd (or SysV shared memory, a shared anonymous mapping):
		// the kernel's description, like a pipe's. It is no path, so no
		// path rule matches it; the object itself is pinned as any other.
		return strings.TrimPrefix(link, "/"), nil
	}
	return r.slow(o, link, id)
}

// internalMounts returns the mount ids of the kernel's internal shmem and
// hugetlbfs mounts. memfd_create puts its files there, as do SysV shared
// memory and shared anonymous mappings. No mount table shows these mounts
// and no path leads into them: their files are reached only through a
// descriptor or /proc/PID/fd and /proc/PID/map_files, and their kernel path
// is a description ("/memfd:NAME (deleted)"), not a name anyone chose for a
// file on a real filesystem. They are the same mounts for the whole host,
// whatever the namespace, so they are learned once, from memfds of vigil's
// own (a huge page size the host does not have is left out).
var internalMounts = sync.OnceValue(func() map[int]bool {
	ids := map[int]bool{}
	for _, flags := range []int{0, unix.MFD_HUGETLB, unix.MFD_HUGETLB | unix.MFD_HUGE_2MB, unix.MFD_HUGETLB | unix.MFD_HUGE_1GB} {
		fd, err := unix.MemfdCreate("vigil-mount-probe", flags|unix.MFD_CLOEXEC)
		if err != nil {
			continue
		}
		var stx unix.Statx_t
		if unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx) == nil && stx.Mask&unix.STATX_MNT_ID != 0 {
			ids[int(stx.Mnt_id)] = true
		}
		unix.Close(fd)
	}
	return ids
})

// fromVigil turns a path as vigil reads it into the reference view: relative
// to the reference root when it lies beneath it, else unchanged (the object
// is outside the reference root; vigil's own name is all there is).
func (r *Reference) fromVigil(p string) string {
	return strip(p, r.rootPath)
}

func strip(p, root string) string {
	switch {
	case root == "/" || root == "":
		return p
	case p == root:
		return "/"
	case strings.HasPrefix(p, root) && p[len(root)] == '/':
		return p[len(root):]
	}
	return p
}

// slow names an object on a mount that is not (or may no longer be) where
// the reference view had it.
func (r *Reference) slow(o *Object, link string, id int) (string, error) {
	dev := unix.Mkdev(o.Stx.Dev_major, o.Stx.Dev_minor)
	c, ok := r.mountByID(id, o.Tid, dev)
	detached := false
	if !ok {
		// A mount that has left every table since vigil read it (a bind
		// mount runc unmounts with MNT_DETACH and then execs from): its
		// last line gives a name to check against the object itself.
		if c, ok = r.buried(id, dev); !ok {
			return "", fmt.Errorf("%w: its mount %d is in no mount table vigil can read (vigil's, the watchee's or its ancestors')", ErrNoName, id)
		}
		detached, c.own, c.foreign = true, false, true
	}
	m, own := c.Mount, c.own
	refs := r.bySB[m.Dev]
	if detached && len(refs) == 0 {
		return "", fmt.Errorf("%w: its mount %d left every mount table, on a filesystem the reference view does not show", ErrNoName, id)
	}
	if len(refs) == 0 {
		if stacking(m.FSType) {
			return "", ErrStacked
		}
		// A filesystem the reference view did not have: no rule could
		// name it, so it keeps the watchee's name.
		if o.WatcheeRoot != nil {
			return strip(link, o.WatcheeRoot()), nil
		}
		return link, nil
	}
	var fsPath string
	switch {
	case o.Stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && o.Stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0:
		fsPath = m.Root
	case own || (!c.foreign && o.WatcheeRoot != nil && o.WatcheeRoot() == "/"):
		// The mount point in that mount table and vigil's reading of the
		// object's path are printed from the same root (vigil's, or the
		// root of the watchee's namespace, which is the watchee's own):
		// the object's path inside its mount is what follows the point.
		rel, ok := under(link, m.Point)
		if !ok {
			return "", fmt.Errorf("%w: its path %q is not beneath its mount point %q", ErrNoName, link, m.Point)
		}
		fsPath = path.Join(m.Root, rel)
	case o.Stx.Mode&unix.S_IFMT == unix.S_IFDIR:
		rel, err := climb(o.Fd, id)
		if err != nil {
			return "", err
		}
		fsPath = path.Join(m.Root, rel)
	case o.Parent >= 0 && o.Base != "" && !strings.Contains(o.Base, "/"):
		rel, err := climb(o.Parent, id)
		if err != nil {
			return "", err
		}
		fsPath = path.Join(m.Root, rel, o.Base)
	default:
		return "", ErrNeedParent
	}
	for _, e := range refs {
		if e.Root == "" {
			continue // the chroot's own mount: its place in the filesystem is unknown
		}
		if rest, ok := under(fsPath, e.Root); ok {
			name := r.fromVigil(path.Join(e.Point, rest))
			if detached && !r.names(name, o.Stx) {
				return "", fmt.Errorf("%w: its mount %d left every mount table, and %s is another object now", ErrNoName, id, name)
			}
			return name, nil
		}
	}
	if detached {
		return "", fmt.Errorf("%w: its mount %d left every mount table, outside every part of the reference view", ErrNoName, id)
	}
	// On a filesystem the reference view shows, but outside every part of
	// it that the view shows (a host file reached through a descriptor):
	// vigil's own name.
	return link, nil
}

// names reports whether name leads, in the reference view and without
// following a symlink, to the object stx describes (same device and inode).
func (r *Reference) names(name string, stx *unix.Statx_t) bool {
	fd, err := unix.Openat2(r.rootfd, name, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var got unix.Statx_t
	if unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_INO, &got) != nil {
		return false
	}
	return got.Dev_major == stx.Dev_major && got.Dev_minor == stx.Dev_minor && got.Ino == stx.Ino
}

// buried returns the last line vigil read of mount id before it dropped its
// reading of the tables, if that mount was on device dev. The line may
// describe a mount that has since been freed and its id taken: the caller
// checks the name it leads to against the object.
func (r *Reference) buried(id int, dev uint64) (cachedMount, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.graveyard[id]
	return c, ok && (c.Dev == dev || c.objDev == dev)
}

// under reports whether p lies at or below root, and the rest of p.
func under(p, root string) (string, bool) {
	if root == "/" {
		return p, true
	}
	if p == root {
		return "/", true
	}
	if strings.HasPrefix(p, root) && p[len(root)] == '/' {
		return p[len(root):], true
	}
	return "", false
}

// maxDepth bounds climb: a path of PATH_MAX has at most PATH_MAX/2 components.
const maxDepth = unix.PathMax / 2

// climb returns the path of directory fd relative to the root of its mount
// (which must be mount id), walking ".." and taking each directory's name
// from the kernel's path of it. ".." never leaves a mount before its root is
// reached, and the walk stops at the root.
func climb(fd, id int) (string, error) {
	cur, err := unix.Dup(fd)
	if err != nil {
		return "", fmt.Errorf("climbing to the mount root: %w", err)
	}
	defer func() { unix.Close(cur) }()
	var parts []string
	for i := 0; i < maxDepth; i++ {
		var stx unix.Statx_t
		if err := unix.Statx(cur, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE|unix.STATX_MNT_ID, &stx); err != nil {
			return "", fmt.Errorf("%w: climbing: %v", ErrNoName, err)
		}
		if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT == 0 || int(stx.Mnt_id) != id {
			return "", fmt.Errorf("%w: left mount %d while climbing", ErrNoName, id)
		}
		if stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0 {
			for l, h := 0, len(parts)-1; l < h; l, h = l+1, h-1 {
				parts[l], parts[h] = parts[h], parts[l]
			}
			return "/" + strings.Join(parts, "/"), nil
		}
		l, err := readlinkFd(cur)
		if err != nil {
			return "", fmt.Errorf("%w: climbing: %v", ErrNoName, err)
		}
		l = strings.TrimSuffix(l, " (deleted)")
		name := l[strings.LastIndexByte(l, '/')+1:]
		if name == "" || name == "." || name == ".." {
			return "", fmt.Errorf("%w: directory without a name while climbing", ErrNoName)
		}
		up, err := unix.Openat(cur, "..", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", fmt.Errorf("%w: climbing: %v", ErrNoName, err)
		}
		unix.Close(cur)
		cur = up
		parts = append(parts, name)
	}
	return "", fmt.Errorf("%w: too deep", ErrNoName)
}

// unmoved reports whether reference mount m still sits where it was
// captured in the live reference namespace (same point, root and device).
func (r *Reference) unmoved(m Mount) bool {
	live := r.liveReference()
	if live == nil {
		return false
	}
	l, ok := live[m.ID]
	return ok && l.Point == m.Point && l.Root == m.Root && l.Dev == m.Dev
}

// liveReference returns the reference namespace's mounts now, as seen from
// the reference root, or nil when no process shows them any more.
func (r *Reference) liveReference() map[int]Mount {
	r.mu.Lock()
	r.sync()
	live := r.liveRef
	r.mu.Unlock()
	if live != nil {
		return live
	}
	src := "/proc/self/mountinfo"
	if !r.own {
		if !processAlive(r.pidfd) || !sameFd(r.rootfd, "/proc/"+strconv.Itoa(r.pid)+"/root") {
			return nil
		}
		src = "/proc/" + strconv.Itoa(r.pid) + "/mountinfo"
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return nil
	}
	mounts, err := ParseMountinfo(b)
	if err != nil || (!r.own && !processAlive(r.pidfd)) {
		return nil
	}
	live = make(map[int]Mount, len(mounts))
	for _, m := range mounts {
		live[m.ID] = m
	}
	r.mu.Lock()
	r.sync()
	r.liveRef = live
	r.mu.Unlock()
	return live
}

// mountByID returns the live mountinfo line of mount id: from vigil's own
// mount table (own: its point is relative to vigil's root), the watchee's
// (its point relative to the watchee's root) or, for a mount above a
// chrooted watchee's root, an ancestor's (foreign: its point is relative to
// a root vigil does not know).
func (r *Reference) mountByID(id, tid int, dev uint64) (cachedMount, bool) {
	r.mu.Lock()
	r.sync()
	c, ok := r.cache[id]
	if ok && c.Dev != dev && c.objDev != dev {
		// A mount of another filesystem had that id when the tables were
		// read: it may have gone and a process vigil does not watch (no
		// Renumber) made the object's mount since. Read that line again.
		// (btrfs subvolumes report another device than their mount's, so
		// a mismatch alone is no error: the line read again is kept with
		// the object's device, and not read a third time.)
		delete(r.cache, id)
		ok = false
	}
	r.mu.Unlock()
	if ok {
		return c, true
	}
	c, ok = r.readTables(id, tid)
	if ok && c.Dev != dev {
		r.mu.Lock()
		if x, still := r.cache[id]; still && x.Mount == c.Mount {
			x.objDev = dev
			r.cache[id] = x
		}
		r.mu.Unlock()
	}
	return c, ok
}

// readTables reads the mount tables that may show mount id, into the cache,
// until one does.
func (r *Reference) readTables(id, tid int) (cachedMount, bool) {
	if c, ok := r.readTable("/proc/self/mountinfo", id, cachedMount{own: true}); ok {
		return c, true
	}
	if c, ok := r.readTable("/proc/"+strconv.Itoa(tid)+"/mountinfo", id, cachedMount{}); ok {
		return c, true
	}
	// A watchee's table shows only the mounts beneath its root: after a
	// chroot inside a mount namespace of its own, the namespace's copy of
	// / is in neither table. Mount ids are the kernel's, whoever's table
	// shows them, so the tables of the watchee's ancestors (unshare, a
	// shell before the chroot) can name it.
	for pid, i := parentOf(tid), 0; pid > 1 && i < maxAncestors; pid, i = parentOf(pid), i+1 {
		if c, ok := r.readTable("/proc/"+strconv.Itoa(pid)+"/mountinfo", id, cachedMount{foreign: true}); ok {
			return c, true
		}
	}
	return cachedMount{}, false
}

// maxAncestors bounds the ancestors mountByID asks.
const maxAncestors = 16

// readTable adds the mounts of mountinfo file to the cache, marked as kind,
// and returns mount id if the cache now has it.
func (r *Reference) readTable(file string, id int, kind cachedMount) (cachedMount, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return cachedMount{}, false
	}
	mounts, err := ParseMountinfo(b)
	if err != nil {
		return cachedMount{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sync()
	for _, x := range mounts {
		if _, seen := r.cache[x.ID]; !seen {
			kind.Mount = x
			r.cache[x.ID] = kind
		}
	}
	c, ok := r.cache[id]
	return c, ok
}

// parentOf returns the parent of process pid, or 0.
func parentOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	f, ok := procinfo.StatField(b, 4)
	if !ok {
		return 0
	}
	ppid, err := strconv.Atoi(string(f))
	if err != nil {
		return 0
	}
	return ppid
}

// cachedMount is a mount table line and whose table it came from.
type cachedMount struct {
	Mount
	own     bool // vigil's
	foreign bool // neither vigil's nor the watchee's
	// objDev is the device of an object found on the mount when it is not
	// Dev (a btrfs subvolume), once the line was read again for it.
	objDev uint64
}

// maxBuried bounds the graveyard.
const maxBuried = 4096

// sync drops caches of an older generation, keeping the mount lines in the
// graveyard. Called with r.mu held.
func (r *Reference) sync() {
	if g := r.gen.Load(); g != r.cacheGen || r.cache == nil {
		if len(r.graveyard)+len(r.cache) > maxBuried || r.graveyard == nil {
			r.graveyard = make(map[int]cachedMount, len(r.cache))
		}
		for id, c := range r.cache {
			r.graveyard[id] = c
		}
		r.cacheGen = g
		r.cache = make(map[int]cachedMount)
		r.liveRef = nil
	}
}

// stacking lists filesystem types that show another filesystem's files
// under new names.
func stacking(fstype string) bool {
	switch fstype {
	case "overlay", "aufs", "shiftfs", "ecryptfs":
		return true
	}
	return false
}

func readlinkFd(fd int) (string, error) {
	var buf [unix.PathMax]byte
	n, err := unix.Readlink("/proc/self/fd/"+strconv.Itoa(fd), buf[:])
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func processAlive(pidfd int) bool {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		// Go's preemption signals (SIGURG) interrupt even a poll that
		// would not wait: EINTR says nothing of the process.
		n, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		return err == nil && n == 0
	}
}

func sameFile(a, b string) bool {
	var sa, sb unix.Stat_t
	return unix.Stat(a, &sa) == nil && unix.Stat(b, &sb) == nil && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// sameFd reports whether path names the same directory, on the same mount,
// as fd.
func sameFd(fd int, p string) bool {
	var a, b unix.Statx_t
	mask := unix.STATX_INO | unix.STATX_MNT_ID
	if unix.Statx(fd, "", unix.AT_EMPTY_PATH, mask, &a) != nil || unix.Statx(unix.AT_FDCWD, p, 0, mask, &b) != nil {
		return false
	}
	return a.Ino == b.Ino && a.Dev_major == b.Dev_major && a.Dev_minor == b.Dev_minor && a.Mnt_id == b.Mnt_id
}
