package doctor

import "unsafe"

// addrOf returns the address of b's first byte, for a process_vm_readv by
// another process. Go's heap objects do not move; the caller keeps b alive.
func addrOf(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(&b[0]))) }
