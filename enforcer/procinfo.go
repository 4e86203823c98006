package enforcer

import (
	"bytes"
	"os"
	"strconv"
)

// procInfo is what an audit record says about the calling thread.
type procInfo struct {
	tgid int
	comm string
}

// procCache maps thread ids to their thread group and comm, read once from
// /proc/<tid>/status so the hot path does not open a file per notification.
// Entries are dropped when the thread execs (comm and, for non-leaders, the
// tid change) and the whole cache is reset when it grows past maxEntries, which
// bounds the window in which a recycled tid could be misattributed in an audit
// record. Decisions never depend on it: kills read the tgid afresh.
type procCache struct {
	m   map[int]procInfo
	buf []byte
}

const maxProcEntries = 4096

func newProcCache() *procCache {
	return &procCache{m: make(map[int]procInfo, 64), buf: make([]byte, 4096)}
}

func (c *procCache) get(tid int) procInfo {
	if pi, ok := c.m[tid]; ok {
		return pi
	}
	pi, ok := c.read(tid)
	if !ok {
		return procInfo{tgid: tid}
	}
	if len(c.m) >= maxProcEntries {
		clear(c.m)
	}
	c.m[tid] = pi
	return pi
}

func (c *procCache) forget(tid int) { delete(c.m, tid) }

// read parses Name: and Tgid: from /proc/<tid>/status.
func (c *procCache) read(tid int) (procInfo, bool) {
	f, err := os.Open("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return procInfo{}, false
	}
	n, _ := f.Read(c.buf)
	f.Close()
	return parseStatus(c.buf[:n])
}

func parseStatus(b []byte) (procInfo, bool) {
	var pi procInfo
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
			pi.comm = string(bytes.TrimSpace(line[5:]))
		case bytes.HasPrefix(line, []byte("Tgid:")):
			v, err := strconv.Atoi(string(bytes.TrimSpace(line[5:])))
			if err == nil {
				pi.tgid, haveTgid = v, true
			}
		}
		if haveTgid && pi.comm != "" {
			break
		}
	}
	return pi, haveTgid
}

// freshTgid reads the thread group of tid without the cache, for kills.
func freshTgid(tid int) (int, bool) {
	c := procCache{buf: make([]byte, 4096)}
	pi, ok := c.read(tid)
	return pi.tgid, ok
}
