package loader

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Record header bits and size (include/uapi/linux/bpf.h).
const (
	ringBusyBit    = 1 << 31
	ringDiscardBit = 1 << 30
	ringHeaderSize = 8
)

// obsRing consumes a BPF ring buffer. Unlike a reader that publishes its
// position after every record, it reads every record available and
// publishes once per batch (and every ringPublishEvery bytes within a long
// one): the consumer position shares a cache line with nothing the
// producer writes, but the producer reads it on every reservation, and a
// line bouncing between the CPUs on every record cost the watchee more
// than the record itself.
type obsRing struct {
	mu         sync.Mutex // held by the reading loop; Close waits for it
	cons, prod []byte
	data       []byte // the data pages, mapped twice
	mask       uint64
	epfd, evfd int
	closed     atomic.Bool
}

// ringPublishEvery is how many bytes a batch consumes before publishing
// its position anyway, so that a long batch frees room as it goes.
const ringPublishEvery = 256 << 10

func newObsRing(mapFD, size int) (*obsRing, error) {
	cons, prod, err := mapRing(mapFD, size)
	if err != nil {
		return nil, err
	}
	r := &obsRing{cons: cons, prod: prod, data: prod[os.Getpagesize():], mask: uint64(size - 1), epfd: -1, evfd: -1}
	if r.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		r.unmap()
		return nil, fmt.Errorf("creating epoll: %w", err)
	}
	if r.evfd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		r.unmap()
		return nil, fmt.Errorf("creating eventfd: %w", err)
	}
	for _, fd := range []int{mapFD, r.evfd} {
		if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			r.unmap()
			return nil, fmt.Errorf("adding fd to epoll: %w", err)
		}
	}
	return r, nil
}

func (r *obsRing) unmap() {
	if r.cons != nil {
		_ = unix.Munmap(r.cons)
		_ = unix.Munmap(r.prod)
		r.cons, r.prod, r.data = nil, nil, nil
	}
	for _, fd := range []*int{&r.epfd, &r.evfd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// available returns the bytes the producer has reserved past the consumer.
func (r *obsRing) available() uint64 { return loadPos(r.prod) - loadPos(r.cons) }

// wake interrupts a wait (Sync, Close).
func (r *obsRing) wake() {
	var one = [8]byte{1}
	_, _ = unix.Write(r.evfd, one[:])
}

// wait blocks until the producer wakes the reader, wake is called, or
// timeout passes. Call with r.mu held.
func (r *obsRing) wait(timeout time.Duration) error {
	var evs [2]unix.EpollEvent
	for {
		n, err := unix.EpollWait(r.epfd, evs[:], int(timeout/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("waiting for the ring buffer: %w", err)
		}
		for _, ev := range evs[:n] {
			if int(ev.Fd) == r.evfd {
				var b [8]byte
				_, _ = unix.Read(r.evfd, b[:])
			}
		}
		return nil
	}
}

// errRingCorrupt means a record header pointed outside what the producer
// published: the reader stops rather than read garbage.
var errRingCorrupt = errors.New("ring buffer record beyond the producer position")

// drain passes every committed record, in order, to fn, stopping at the
// first one still being written (busy). It publishes the consumer position
// at the end and every ringPublishEvery bytes. Call with r.mu held.
func (r *obsRing) drain(fn func([]byte)) (records int, busy bool, err error) {
	cons := loadPos(r.cons)
	prod := loadPos(r.prod)
	published := cons
	defer func() {
		if cons != published {
			storePos(r.cons, cons)
		}
	}()
	for cons < prod {
		off := cons & r.mask
		hdr := loadHeader(r.data[off:])
		if hdr&ringBusyBit != 0 {
			return records, true, nil
		}
		n := uint64(hdr &^ (ringBusyBit | ringDiscardBit))
		next := cons + ringHeaderSize + (n+7)&^7
		if next > prod || n+ringHeaderSize > r.mask+1 {
			return records, false, errRingCorrupt
		}
		if hdr&ringDiscardBit == 0 {
			start := off + ringHeaderSize
			fn(r.data[start : start+n])
			records++
		}
		cons = next
		if cons-published >= ringPublishEvery {
			storePos(r.cons, cons)
			published = cons
		}
		if cons == prod {
			prod = loadPos(r.prod)
		}
	}
	return records, false, nil
}
