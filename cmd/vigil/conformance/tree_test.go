package conformance_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// treeOptions says what of a tree legitimately differs between two runs.
type treeOptions struct {
	// mtimes are globs of the paths whose modification times the program
	// preserves (or sets): only those are compared.
	mtimes []string
	// fileMtimes are the same for non-directories only (a move keeps a
	// file's time, but changes the time of the directories it leaves and
	// enters).
	fileMtimes []string
	// ignoreContent are globs of files whose contents differ between any
	// two runs, bare or not (stat data cached in git's index): their
	// metadata is compared, their contents are not.
	ignoreContent []string
	// ignoreSize are globs of files whose size differs between any two
	// runs too: keys and signatures, whose random numbers are stored
	// without leading zero bytes (a byte shorter in one run of 256).
	ignoreSize []string
	// replace maps strings that differ between runs to the token written
	// instead, in file contents and symlink targets.
	replace []replacement
}

type replacement struct{ old, new string }

func (o *treeOptions) normalise(b []byte) []byte {
	for _, r := range o.replace {
		b = bytes.ReplaceAll(b, []byte(r.old), []byte(r.new))
	}
	return b
}

// snapshot describes every entry under root, keyed by its slash-separated
// path relative to root, as one comparable line.
func snapshot(root string, o *treeOptions) (map[string]string, error) {
	type ent struct {
		rel  string
		st   syscall.Stat_t
		line string
	}
	var ents []*ent
	inodes := map[[2]uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		e := &ent{rel: filepath.ToSlash(rel)}
		if err := syscall.Lstat(p, &e.st); err != nil {
			return fmt.Errorf("lstat %s: %w", p, err)
		}
		var b strings.Builder
		mode := e.st.Mode
		fmt.Fprintf(&b, "%s %04o %d:%d", kindOf(mode), mode&0o7777, e.st.Uid, e.st.Gid)
		switch mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			if matchAny(o.ignoreSize, e.rel) {
				b.WriteString(" size=ignored")
			} else {
				fmt.Fprintf(&b, " size=%d", e.st.Size)
			}
			if matchAny(o.ignoreContent, e.rel) {
				b.WriteString(" content=ignored")
			} else {
				data, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				fmt.Fprintf(&b, " sha256=%x", sha256.Sum256(o.normalise(data)))
			}
		case syscall.S_IFLNK:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " -> %q", o.normalise([]byte(t)))
		case syscall.S_IFCHR, syscall.S_IFBLK:
			fmt.Fprintf(&b, " rdev=%d:%d", unix.Major(e.st.Rdev), unix.Minor(e.st.Rdev))
		}
		if matchAny(o.mtimes, e.rel) || (mode&syscall.S_IFMT != syscall.S_IFDIR && matchAny(o.fileMtimes, e.rel)) {
			fmt.Fprintf(&b, " mtime=%d.%09d", e.st.Mtim.Sec, e.st.Mtim.Nsec)
		}
		e.line = b.String()
		if mode&syscall.S_IFMT != syscall.S_IFDIR {
			k := [2]uint64{e.st.Dev, e.st.Ino}
			inodes[k] = append(inodes[k], e.rel)
		}
		ents = append(ents, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(ents))
	for _, e := range ents {
		line := e.line
		if names := inodes[[2]uint64{e.st.Dev, e.st.Ino}]; len(names) > 1 {
			// Hard links: which names share the inode, not its number.
			sort.Strings(names)
			line += fmt.Sprintf(" nlink=%d links=%s", e.st.Nlink, strings.Join(names, ","))
		} else if e.st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
			line += fmt.Sprintf(" nlink=%d", e.st.Nlink)
		}
		out[e.rel] = line
	}
	return out, nil
}

func kindOf(mode uint32) string {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		return "dir"
	case syscall.S_IFREG:
		return "file"
	case syscall.S_IFLNK:
		return "symlink"
	case syscall.S_IFIFO:
		return "fifo"
	case syscall.S_IFSOCK:
		return "socket"
	case syscall.S_IFCHR:
		return "chardev"
	case syscall.S_IFBLK:
		return "blockdev"
	}
	return fmt.Sprintf("type%o", mode&syscall.S_IFMT)
}

// diffTrees lists every path whose line differs, sorted, as
// "- path: bare line" / "+ path: vigil line" pairs.
func diffTrees(want, got map[string]string) string {
	paths := make([]string, 0, len(want)+len(got))
	for p := range want {
		paths = append(paths, p)
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var b strings.Builder
	for _, p := range paths {
		w, inW := want[p]
		g, inG := got[p]
		switch {
		case inW && !inG:
			fmt.Fprintf(&b, "- %s: %s   (missing under vigil)\n", p, w)
		case !inW && inG:
			fmt.Fprintf(&b, "+ %s: %s   (only under vigil)\n", p, g)
		case w != g:
			fmt.Fprintf(&b, "- %s: %s\n+ %s: %s\n", p, w, p, g)
		}
	}
	return b.String()
}

// matchAny reports whether rel matches one of the globs: path.Match per
// component, where a "**" component matches any number of components.
func matchAny(globs []string, rel string) bool {
	for _, g := range globs {
		if matchGlob(strings.Split(g, "/"), strings.Split(rel, "/")) {
			return true
		}
	}
	return false
}

func matchGlob(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(name); i++ {
				if matchGlob(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}
