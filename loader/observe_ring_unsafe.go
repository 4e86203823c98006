package loader

import (
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapRing maps a BPF ring buffer of size bytes (kernel/bpf/ringbuf.c): the
// consumer page read-write, then the producer page and the data pages,
// which the kernel maps twice in a row so that a record that wraps around
// the end is contiguous.
func mapRing(fd, size int) (cons, prod []byte, err error) {
	page := os.Getpagesize()
	cons, err = unix.Mmap(fd, 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mapping the consumer page: %w", err)
	}
	prod, err = unix.Mmap(fd, int64(page), page+2*size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		_ = unix.Munmap(cons)
		return nil, nil, fmt.Errorf("mapping the data pages: %w", err)
	}
	return cons, prod, nil
}

// loadPos reads a position word the other side writes.
func loadPos(page []byte) uint64 { return atomic.LoadUint64((*uint64)(unsafe.Pointer(&page[0]))) }

// storePos publishes the consumer position.
func storePos(page []byte, v uint64) { atomic.StoreUint64((*uint64)(unsafe.Pointer(&page[0])), v) }

// loadHeader reads a record header's length word, which the producer sets
// atomically when it commits (the busy bit clears last).
func loadHeader(b []byte) uint32 { return atomic.LoadUint32((*uint32)(unsafe.Pointer(&b[0]))) }
