package emulate

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// creds is what a watchee thread's credentials say about file operations, as
// vigil sees them from the initial user namespace (host ids). The thread is
// blocked in the trapped syscall while vigil reads them, and with
// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV only a fatal signal can end that
// wait, so its own credentials cannot change under us. The umask belongs to
// the fs_struct its siblings share; a sibling racing umask(2) is as racy with
// vigil as it would be with the kernel.
type creds struct {
	Fsuid, Fsgid uint32
	Groups       []uint32
	Umask        uint32
	CapEff       uint64
}

// parseStatus reads the credential lines of /proc/<tid>/status. It
// allocates only the groups slice: it runs for every emulated call.
func parseStatus(b []byte) (creds, error) {
	var c creds
	var have int
	const (
		haveUid = 1 << iota
		haveGid
		haveGroups
		haveUmask
		haveCapEff
		haveAll = haveUid | haveGid | haveGroups | haveUmask | haveCapEff
	)
	for len(b) > 0 && have != haveAll {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue
		}
		key, val := line[:colon], line[colon+1:]
		var ok bool
		switch string(key) {
		case "Uid":
			// real, effective, saved, filesystem: file operations use the last.
			c.Fsuid, ok = nthUint(val, 3, 10)
			have |= haveUid
		case "Gid":
			c.Fsgid, ok = nthUint(val, 3, 10)
			have |= haveGid
		case "Groups":
			ok = true
			c.Groups = make([]uint32, 0, bytes.Count(val, []byte{' '}))
			for f := val; ok; {
				var v uint64
				var rest []byte
				v, rest, ok = nextUint(f, 10)
				if !ok {
					ok = len(bytes.TrimSpace(f)) == 0
					break
				}
				c.Groups = append(c.Groups, uint32(v))
				f = rest
			}
			have |= haveGroups
		case "Umask":
			c.Umask, ok = nthUint(val, 0, 8)
			have |= haveUmask
		case "CapEff":
			var v uint64
			v, _, ok = nextUint(val, 16)
			c.CapEff = v
			have |= haveCapEff
		default:
			continue
		}
		if !ok {
			return creds{}, fmt.Errorf("malformed %s line in status: %q", key, line)
		}
	}
	if have != haveAll {
		// Umask: appeared in Linux 4.7.
		return creds{}, errors.New("status lacks Uid, Gid, Groups, Umask or CapEff")
	}
	return c, nil
}

// nextUint parses the first whitespace-separated number of b in base.
func nextUint(b []byte, base int) (uint64, []byte, bool) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	j := i
	var v uint64
	for ; j < len(b); j++ {
		var d uint64
		switch ch := b[j]; {
		case ch >= '0' && ch <= '9':
			d = uint64(ch - '0')
		case ch >= 'a' && ch <= 'f':
			d = uint64(ch-'a') + 10
		default:
			goto end
		}
		if d >= uint64(base) || v > (^uint64(0)-d)/uint64(base) {
			return 0, nil, false
		}
		v = v*uint64(base) + d
	}
end:
	if j == i || (j < len(b) && b[j] != ' ' && b[j] != '\t') {
		return 0, nil, false
	}
	return v, b[j:], true
}

// nthUint parses the n-th (from 0) number of b as a uint32.
func nthUint(b []byte, n, base int) (uint32, bool) {
	for i := 0; ; i++ {
		v, rest, ok := nextUint(b, base)
		if !ok || v > 0xffffffff {
			return 0, false
		}
		if i == n {
			return uint32(v), true
		}
		b = rest
	}
}

// groupsKey renders supplementary groups for a worker's argv and cache key.
func groupsKey(g []uint32) string {
	var b strings.Builder
	for i, v := range g {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(v), 10))
	}
	return b.String()
}

// idExtent is one line of a uid_map or gid_map as read from the initial user
// namespace: ids [Inner, Inner+Count) of the namespace are host ids
// [Outer, Outer+Count).
type idExtent struct{ Inner, Outer, Count uint32 }

// idMap translates host ids into a user namespace's own. The maps can be
// written only once, so a worker reads them once.
type idMap []idExtent

func parseIDMap(b []byte) (idMap, error) {
	var m idMap
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("malformed id map line %q", line)
		}
		var v [3]uint32
		for i := range f {
			n, err := strconv.ParseUint(f[i], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("malformed id map line %q: %w", line, err)
			}
			v[i] = uint32(n)
		}
		m = append(m, idExtent{Inner: v[0], Outer: v[1], Count: v[2]})
	}
	return m, nil
}

// toInner returns the namespace's id for host id h.
func (m idMap) toInner(h uint32) (uint32, bool) {
	for _, e := range m {
		if h >= e.Outer && uint64(h) < uint64(e.Outer)+uint64(e.Count) {
			return e.Inner + (h - e.Outer), true
		}
	}
	return 0, false
}
