package args

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// DevKind is the kind of node mknod creates, as far as a device policy cares.
type DevKind uint8

// Node kinds.
const (
	// DevOther is a node that is no device: a regular file (S_IFREG, or a
	// zero type, which the kernel treats as S_IFREG), a FIFO or a socket.
	DevOther DevKind = iota
	// DevChar is a character device (S_IFCHR).
	DevChar
	// DevBlock is a block device (S_IFBLK).
	DevBlock
)

// String returns "char", "block" or "other".
func (k DevKind) String() string {
	switch k {
	case DevChar:
		return "char"
	case DevBlock:
		return "block"
	}
	return "other"
}

// Dev is the node mknod or mknodat would create.
type Dev struct {
	Kind  DevKind
	Major uint32
	Minor uint32
}

// String returns the policy's spelling of a device, "c 1:3" or "b 8:0", and
// "other" for a node that is no device.
func (d Dev) String() string {
	var c byte
	switch d.Kind {
	case DevChar:
		c = 'c'
	case DevBlock:
		c = 'b'
	default:
		return "other"
	}
	b := make([]byte, 0, 24)
	b = append(b, c, ' ')
	b = strconv.AppendUint(b, uint64(d.Major), 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, uint64(d.Minor), 10)
	return string(b)
}

// DecodeDev decodes the mode and dev registers of mknod/mknodat the way
// do_mknodat (fs/namei.c) uses them. The syscalls declare mode a umode_t and
// dev an unsigned int, so only their low 16 and 32 bits count (a glibc dev_t
// with bits above 32 reaches the kernel truncated). may_mknod then refuses
// S_IFDIR with ErrPerm and any type other than regular, char, block, FIFO,
// socket or 0 with ErrInvalid, before the path is even looked at. Only
// character and block devices carry a device number; for the other types the
// kernel passes 0 to vfs_mknod whatever dev says, and so does DecodeDev.
// Major and minor are split as new_decode_dev does, which for 32-bit values
// is what unix.Major and unix.Minor compute.
func DecodeDev(mode, dev uint64) (Dev, error) {
	switch uint16(mode) & unix.S_IFMT {
	case unix.S_IFCHR:
		d := uint64(uint32(dev))
		return Dev{Kind: DevChar, Major: unix.Major(d), Minor: unix.Minor(d)}, nil
	case unix.S_IFBLK:
		d := uint64(uint32(dev))
		return Dev{Kind: DevBlock, Major: unix.Major(d), Minor: unix.Minor(d)}, nil
	case unix.S_IFREG, 0, unix.S_IFIFO, unix.S_IFSOCK:
		return Dev{Kind: DevOther}, nil
	case unix.S_IFDIR:
		return Dev{}, ErrPerm
	}
	return Dev{}, ErrInvalid
}
