package view

import (
	"encoding/binary"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// maxLongDepth bounds climbLong: how many directories below the nearest
// one whose path the kernel prints it climbs.
const maxLongDepth = 1 << 14

// longLink is readlinkFd for an object whose path is longer than the
// kernel prints (readlink of /proc/self/fd answers ENAMETOOLONG past
// PATH_MAX): a directory is named by climbing (climbLong), anything else
// by its directory and its name there, when the resolver knows them. A
// watchee may work in a directory that deep (bash cds into it, tar and rm
// walk such trees with *at calls); refusing every call there would make
// vigil fail what the kernel allows.
func longLink(o *Object) (string, error) {
	if o.Stx.Mode&unix.S_IFMT == unix.S_IFDIR {
		return climbLong(o.Fd)
	}
	if o.Parent < 0 || o.Base == "" || strings.Contains(o.Base, "/") || o.Base == "." || o.Base == ".." {
		return "", ErrNeedParent // the resolver's walk knows them
	}
	dir, err := readlinkFd(o.Parent)
	if err == unix.ENAMETOOLONG {
		dir, err = climbLong(o.Parent)
	}
	if err != nil {
		return "", err
	}
	return path.Join(dir, o.Base), nil
}

// climbLong names directory fd as the kernel would if its buffer were long
// enough: it climbs ".." to the nearest directory whose path the kernel
// prints, finding each directory's name among its parent's entries by inode
// number. It stays on fd's mount: a mount point that deep is refused (its
// inode number in the parent is the covered directory's). Like climb, it
// reads names one at a time, so a rename meanwhile can give a name that
// never held at one instant; the object itself is what the binding and the
// emulator hold, and a rename is a topology the policy sees on the next
// call.
func climbLong(fd int) (string, error) {
	cur, err := unix.Dup(fd)
	if err != nil {
		return "", fmt.Errorf("naming a long path: %w", err)
	}
	defer func() { unix.Close(cur) }()
	var parts []string
	for len(parts) < maxLongDepth {
		var stx unix.Statx_t
		if err := unix.Statx(cur, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE|unix.STATX_INO|unix.STATX_MNT_ID, &stx); err != nil {
			return "", fmt.Errorf("naming a long path: %w", err)
		}
		if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT == 0 || stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0 {
			return "", fmt.Errorf("naming a long path: a mount point deeper than PATH_MAX: %w", unix.ENAMETOOLONG)
		}
		up, err := unix.Openat(cur, "..", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", fmt.Errorf("naming a long path: %w", err)
		}
		name, err := entryWithIno(up, stx.Ino)
		unix.Close(cur)
		cur = up
		if err != nil {
			return "", err
		}
		parts = append(parts, name)
		l, err := readlinkFd(cur)
		if err == unix.ENAMETOOLONG {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("naming a long path: %w", err)
		}
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
		return path.Join(l, strings.Join(parts, "/")), nil
	}
	return "", fmt.Errorf("naming a long path: deeper than %d directories: %w", maxLongDepth, unix.ENAMETOOLONG)
}

// entryWithIno returns the name of the entry of directory dir (any
// descriptor of it) whose inode number is ino. The directory is read with
// O_NOATIME: naming an object must not change what the watchee could see.
func entryWithIno(dir int, ino uint64) (string, error) {
	fd, err := unix.Openat(dir, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOATIME|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("naming a long path: reading a directory: %w", err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return "", fmt.Errorf("naming a long path: reading a directory: %w", err)
		}
		if n <= 0 {
			return "", fmt.Errorf("naming a long path: the directory is no longer in its parent: %w", ErrNoName)
		}
		for off := 0; off < n; {
			// struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16,
			// d_type u8, d_name NUL-terminated.
			if off+direntNameOff > n {
				return "", fmt.Errorf("naming a long path: malformed directory entry: %w", ErrNoName)
			}
			dIno := binary.NativeEndian.Uint64(buf[off:])
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			if reclen < direntNameOff || off+reclen > n {
				return "", fmt.Errorf("naming a long path: malformed directory entry: %w", ErrNoName)
			}
			if dIno == ino {
				name := direntName(buf[off+direntNameOff : off+reclen])
				if name != "." && name != ".." && name != "" {
					return name, nil
				}
			}
			off += reclen
		}
	}
}

// direntNameOff is where d_name starts in a struct linux_dirent64.
const direntNameOff = 19

// direntName is the NUL-terminated name at the start of b.
func direntName(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
