package view

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one line of a /proc/<pid>/mountinfo file (proc_pid_mountinfo(5)).
type Mount struct {
	// ID is the mount id (unique among live mounts; reused after unmount).
	ID int
	// Parent is the parent mount's id.
	Parent int
	// Dev is the superblock's device (st_dev of the filesystem).
	Dev uint64
	// Root is the path, inside its filesystem, of the directory mounted:
	// "/" for a whole filesystem, a subdirectory for a bind mount; for a
	// bind-mounted pseudo file (a namespace), the kernel's description of
	// it ("net:[4026532174]"), which is no path.
	Root string
	// Point is the mount point, relative to the reading process's root.
	Point string
	// FSType is the filesystem type ("ext4", "overlay", "tmpfs"...).
	FSType string
}

// ErrMalformed marks a mountinfo line that does not parse.
var ErrMalformed = errors.New("malformed mountinfo")

// ParseMountinfo parses the text of a mountinfo file. Octal escapes (\040
// for a space, \011, \012, \134) in Root and Point are decoded as the kernel
// wrote them (seq_path_root with " \t\n\\").
func ParseMountinfo(b []byte) ([]Mount, error) {
	var out []Mount
	for line := 1; len(b) > 0; line++ {
		var l []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			l, b = b[:i], b[i+1:]
		} else {
			l, b = b, nil
		}
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		m, err := parseMountLine(l)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrMalformed, line, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func parseMountLine(l []byte) (Mount, error) {
	f := bytes.Fields(l)
	// id parent major:minor root point options [optional...] - fstype source superoptions
	if len(f) < 10 {
		return Mount{}, fmt.Errorf("%d fields", len(f))
	}
	var m Mount
	var err error
	if m.ID, err = strconv.Atoi(string(f[0])); err != nil || m.ID < 0 {
		return Mount{}, fmt.Errorf("mount id %q", f[0])
	}
	if m.Parent, err = strconv.Atoi(string(f[1])); err != nil || m.Parent < 0 {
		return Mount{}, fmt.Errorf("parent id %q", f[1])
	}
	maj, min, ok := bytes.Cut(f[2], []byte{':'})
	if !ok {
		return Mount{}, fmt.Errorf("device %q", f[2])
	}
	ma, err1 := strconv.ParseUint(string(maj), 10, 32)
	mi, err2 := strconv.ParseUint(string(min), 10, 32)
	if err1 != nil || err2 != nil {
		return Mount{}, fmt.Errorf("device %q", f[2])
	}
	m.Dev = unix.Mkdev(uint32(ma), uint32(mi))
	if m.Root, err = unescape(f[3]); err != nil {
		return Mount{}, err
	}
	if m.Point, err = unescape(f[4]); err != nil {
		return Mount{}, err
	}
	sep := -1
	for i := 6; i < len(f); i++ {
		if len(f[i]) == 1 && f[i][0] == '-' {
			sep = i
			break
		}
	}
	if sep < 0 || sep+1 >= len(f) {
		return Mount{}, errors.New("no filesystem type after the separator")
	}
	m.FSType = string(f[sep+1])
	if !validRoot(m.Root) || len(m.Point) == 0 || m.Point[0] != '/' {
		return Mount{}, fmt.Errorf("root %q or mount point %q not absolute", m.Root, m.Point)
	}
	return m, nil
}

// validRoot reports whether root is a mount root the kernel prints: a path
// inside the filesystem, or the description of a pseudo file that was bind
// mounted (a namespace pinned by `ip netns add`, a container runtime or
// systemd: "net:[4026532174]", which any host with a named network
// namespace has in its table).
func validRoot(root string) bool {
	if strings.HasPrefix(root, "/") {
		return true
	}
	kind, rest, ok := strings.Cut(root, ":[")
	return ok && kind != "" && !strings.Contains(kind, "/") && strings.HasSuffix(rest, "]")
}

// unescape decodes the kernel's \ooo escapes.
func unescape(b []byte) (string, error) {
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b), nil
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			out = append(out, b[i])
			continue
		}
		if i+4 > len(b) {
			return "", fmt.Errorf("truncated escape in %q", b)
		}
		v, err := strconv.ParseUint(string(b[i+1:i+4]), 8, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in %q", b)
		}
		out = append(out, byte(v))
		i += 3
	}
	return string(out), nil
}
