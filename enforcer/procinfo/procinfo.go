// Package procinfo caches what audit records and observe events say about a
// thread: its thread group and comm.
package procinfo

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// Info is what an audit record says about the calling thread.
type Info struct {
	Tgid int
	Comm string
}

// Cache maps thread ids to their thread group and comm, read from
// /proc/<tid>/status at most once per maxAge per thread, so the hot path does
// not open a file per notification. Entries are dropped when the thread
// execs through a trapped execve (comm and, for non-leaders, the tid change),
// hold only while the caller's comm epoch (the eBPF programs' count of
// execs and renames, trapped or not: loader.CommEpoch) has not moved since
// they were read, expire after maxAge (a recycled tid, a change without an
// epoch to show it), and the whole cache is reset when it grows past
// maxProcEntries. Decisions never depend on it: kills read the tgid afresh.
type Cache struct {
	m   map[int]entry
	buf []byte
}

type entry struct {
	Info
	read  time.Time
	epoch uint64
}

// maxAge bounds how stale a cached comm or tgid may be.
const maxAge = time.Second

const maxProcEntries = 4096

// New returns an empty Cache. It is not safe for concurrent use.
func New() *Cache {
	return &Cache{m: make(map[int]entry, 64), buf: make([]byte, 4096)}
}

// Get returns tid's thread group and comm, reading /proc once per thread
// and comm epoch. commEpoch must be read before Get (a rename between the
// two reads then only costs a second read of /proc); a caller without such
// a count passes 0 each time and relies on maxAge alone.
func (c *Cache) Get(tid int, commEpoch uint64) Info {
	now := time.Now()
	if e, ok := c.m[tid]; ok && e.epoch == commEpoch && now.Sub(e.read) < maxAge {
		return e.Info
	}
	pi, ok := c.read(tid)
	if !ok {
		return Info{Tgid: tid}
	}
	if len(c.m) >= maxProcEntries {
		clear(c.m)
	}
	c.m[tid] = entry{Info: pi, read: now, epoch: commEpoch}
	return pi
}

// Forget drops tid (its comm changes when it execs).
func (c *Cache) Forget(tid int) { delete(c.m, tid) }

// read parses Name: and Tgid: from /proc/<tid>/status.
func (c *Cache) read(tid int) (Info, bool) {
	f, err := os.Open("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return Info{}, false
	}
	n, _ := f.Read(c.buf)
	f.Close()
	return parseStatus(c.buf[:n])
}

func parseStatus(b []byte) (Info, bool) {
	var pi Info
	var haveTgid bool
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		switch {
		case bytes.HasPrefix(line, []byte("Name:")):
			pi.Comm = string(bytes.TrimSpace(line[5:]))
		case bytes.HasPrefix(line, []byte("Tgid:")):
			v, err := strconv.Atoi(string(bytes.TrimSpace(line[5:])))
			if err == nil {
				pi.Tgid, haveTgid = v, true
			}
		}
		if haveTgid && pi.Comm != "" {
			break
		}
	}
	return pi, haveTgid
}

// FreshTgid reads the thread group of tid without the cache, for kills.
func FreshTgid(tid int) (int, bool) {
	c := Cache{buf: make([]byte, 4096)}
	pi, ok := c.read(tid)
	return pi.Tgid, ok
}

// CapableInitially reports whether thread tid has capability c in its
// effective set and lives in the initial user namespace (vigil's own, which
// is the initial one wherever vigil can supervise anything that needs this):
// the kernel's capable(c). For the rare checks the kernel makes with
// capable() that vigil must repeat; false when tid cannot be read.
func CapableInitially(tid, c int) bool {
	t := strconv.Itoa(tid)
	own, err1 := os.Readlink("/proc/self/ns/user")
	its, err2 := os.Readlink("/proc/" + t + "/ns/user")
	if err1 != nil || err2 != nil || own != its {
		return false
	}
	b, err := os.ReadFile("/proc/" + t + "/status")
	if err != nil {
		return false
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("CapEff:")); ok {
			eff, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 64)
			return err == nil && eff&(1<<uint(c)) != 0
		}
	}
	return false
}

// StatField returns field n of a /proc/<pid>/stat line, numbered as in
// proc(5) (3 is the state, 4 the parent, 22 the start time), or false. The
// command, field 2, may hold spaces and parentheses: fields 3 onward are
// counted after its last closing parenthesis.
func StatField(b []byte, n int) ([]byte, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || n < 3 {
		return nil, false
	}
	f := bytes.Fields(b[i+1:])
	if n-3 >= len(f) {
		return nil, false
	}
	return f[n-3], true
}
