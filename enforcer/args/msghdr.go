package args

// The structs of sendmsg(2) and sendmmsg(2) as an x86_64 watchee lays them
// out (include/linux/socket.h, include/uapi/linux/uio.h), and the checks the
// kernel makes on them, in its order (net/socket.c copy_msghdr_from_user,
// __copy_msghdr, ____sys_sendmsg; lib/iov_iter.c __import_iovec):
//
//	sendmsg   MSG_CMSG_COMPAT in flags -> EINVAL (before the fd); the fd
//	          (EBADF, ENOTSOCK); the msghdr (EFAULT); msg_namelen < 0 ->
//	          EINVAL, above SockaddrStorageSize clamped to it, ignored with a
//	          NULL msg_name; the name (EFAULT); msg_iovlen > UioMaxIov ->
//	          EMSGSIZE; the iovec array (EFAULT), with more than one entry a
//	          negative length -> EINVAL, then each base and length past the
//	          user address space -> EFAULT, the total capped at MaxRWCount;
//	          msg_controllen > INT_MAX -> ENOBUFS, above net.core.optmem_max
//	          ENOBUFS too, then the control bytes (EFAULT). Only then the
//	          protocol, which walks the control messages (CMSG_OK, else
//	          EINVAL) and copies the data.
//	sendmmsg  the same per entry, lazily: vlen is capped at UioMaxIov, and
//	          an entry that fails after others were sent ends the call with
//	          their count.
//
// Register arguments are truncated as the syscall wrappers do: flags and vlen
// are unsigned int, msg_namelen an int, msg_flags an unsigned int.

import "golang.org/x/sys/unix"

// Sizes and limits of the send structs on x86_64.
const (
	// MsghdrSize is sizeof(struct user_msghdr).
	MsghdrSize = 56
	// MmsghdrSize is sizeof(struct mmsghdr): a user_msghdr, the unsigned
	// msg_len the kernel writes back, and padding.
	MmsghdrSize = 64
	// MmsghdrLenOffset is offsetof(struct mmsghdr, msg_len).
	MmsghdrLenOffset = 56
	// IovecSize is sizeof(struct iovec).
	IovecSize = 16
	// CmsghdrSize is sizeof(struct cmsghdr): size_t cmsg_len, int
	// cmsg_level, int cmsg_type; also CMSG_ALIGN(sizeof(struct cmsghdr)).
	CmsghdrSize = 16
	// UioMaxIov is UIO_MAXIOV: the most iovecs (and sendmmsg entries) the
	// kernel takes.
	UioMaxIov = 1024
	// MaxRWCount is MAX_RW_COUNT (INT_MAX & PAGE_MASK): the most bytes one
	// read or write moves; iovec totals are capped at it.
	MaxRWCount = 0x7ffff000
	// userPtrMax is USER_PTR_MAX with 4-level paging, the highest address
	// access_ok accepts (arch/x86/include/asm/uaccess_64.h).
	userPtrMax = 0x7ffffffff000 - 1
	// MsgCmsgCompat is MSG_CMSG_COMPAT, refused in native sendmsg and
	// sendmmsg flags.
	MsgCmsgCompat = 0x80000000
	// intMax is INT_MAX.
	intMaxU = 1<<31 - 1
)

// Msghdr is a decoded struct user_msghdr.
type Msghdr struct {
	// Name is the msg_name pointer and Namelen msg_namelen as the kernel
	// uses them: 0 when Name is NULL, clamped to SockaddrStorageSize.
	Name    uint64
	Namelen int
	// Iov and Iovlen are msg_iov and msg_iovlen.
	Iov    uint64
	Iovlen uint64
	// Control and Controllen are msg_control and msg_controllen.
	Control    uint64
	Controllen uint64
	// Flags is msg_flags (sendmmsg honours MSG_EOR from it).
	Flags uint32
}

// HasName reports whether the message names a destination.
func (m *Msghdr) HasName() bool { return m.Name != 0 && m.Namelen > 0 }

// DecodeMsghdr decodes a struct user_msghdr with __copy_msghdr's first
// check: a negative msg_namelen with a msg_name is ErrInvalid. The kernel
// then copies the name, and only after that refuses msg_iovlen above
// UioMaxIov (ReadIovecs does). len(b) must be MsghdrSize (anything else is
// ErrInvalid). It never panics.
func DecodeMsghdr(b []byte) (Msghdr, error) {
	if len(b) != MsghdrSize {
		return Msghdr{}, ErrInvalid
	}
	m := Msghdr{
		Name:       hostEndian.Uint64(b[0:]),
		Iov:        hostEndian.Uint64(b[16:]),
		Iovlen:     hostEndian.Uint64(b[24:]),
		Control:    hostEndian.Uint64(b[32:]),
		Controllen: hostEndian.Uint64(b[40:]),
		Flags:      hostEndian.Uint32(b[48:]),
	}
	namelen := int(int32(hostEndian.Uint32(b[8:])))
	if m.Name == 0 {
		namelen = 0
	}
	if namelen < 0 {
		return m, ErrInvalid
	}
	m.Namelen = min(namelen, SockaddrStorageSize)
	if m.Name == 0 || m.Namelen == 0 {
		m.Name, m.Namelen = 0, 0
	}
	return m, nil
}

// ReadMsghdr reads and decodes the struct user_msghdr at addr (buf holds at
// least MsghdrSize bytes).
func ReadMsghdr(tid int, addr uint64, buf []byte) (Msghdr, error) {
	if len(buf) < MsghdrSize {
		return Msghdr{}, ErrBufferTooSmall
	}
	if _, err := ReadBytes(tid, addr, MsghdrSize, buf); err != nil {
		return Msghdr{}, err
	}
	return DecodeMsghdr(buf[:MsghdrSize])
}

// Iovec is one struct iovec.
type Iovec struct {
	Base, Len uint64
}

// DecodeIovecs decodes len(b)/IovecSize iovecs into dst (which must hold
// them) with __import_iovec's checks and returns how many bytes they move:
// with more than one entry, a length that is negative as ssize_t is
// ErrInvalid (copy_iovec_from_user) before any range is checked; then an
// entry outside the user address space is ErrFault (access_ok); lengths are
// capped so that the total stays within MaxRWCount. A single entry takes
// import_ubuf's path, where the length is capped first and never invalid.
// len(b) must be a multiple of IovecSize.
func DecodeIovecs(b []byte, dst []Iovec) (n int, total uint64, err error) {
	if len(b)%IovecSize != 0 || len(b)/IovecSize > len(dst) {
		return 0, 0, ErrBufferTooSmall
	}
	n = len(b) / IovecSize
	for i := 0; i < n; i++ {
		dst[i] = Iovec{Base: hostEndian.Uint64(b[i*IovecSize:]), Len: hostEndian.Uint64(b[i*IovecSize+8:])}
		if n > 1 && int64(dst[i].Len) < 0 {
			return 0, 0, ErrInvalid
		}
	}
	if n == 1 {
		dst[0].Len = min(dst[0].Len, MaxRWCount)
	}
	for i := 0; i < n; i++ {
		if !accessOK(dst[i].Base, dst[i].Len) {
			return 0, 0, ErrFault
		}
		dst[i].Len = min(dst[i].Len, MaxRWCount-total)
		total += dst[i].Len
	}
	return n, total, nil
}

// ImportUbuf checks sendto's buffer as import_ubuf does: the length is
// capped at MaxRWCount, then a range outside the user address space is
// ErrFault.
func ImportUbuf(base, n uint64) (Iovec, error) {
	n = min(n, MaxRWCount)
	if !accessOK(base, n) {
		return Iovec{}, ErrFault
	}
	return Iovec{Base: base, Len: n}, nil
}

// accessOK mirrors x86_64's __access_ok for a non-constant size.
func accessOK(addr, size uint64) bool {
	sum := addr + size
	return sum >= addr && sum <= userPtrMax
}

// ReadIovecs reads and decodes the n iovecs at addr (msg_iovlen): more
// than UioMaxIov is ErrMsgSize, then the array is read (ErrFault) and
// decoded (DecodeIovecs). buf holds the raw array (n*IovecSize bytes) and
// dst the result.
func ReadIovecs(tid int, addr uint64, n uint64, buf []byte, dst []Iovec) (int, uint64, error) {
	if n > UioMaxIov {
		return 0, 0, ErrMsgSize
	}
	size := int(n) * IovecSize
	if size > len(buf) {
		return 0, 0, ErrBufferTooSmall
	}
	if _, err := ReadBytes(tid, addr, size, buf); err != nil {
		return 0, 0, err
	}
	return DecodeIovecs(buf[:size], dst)
}

// CheckControllen applies ____sys_sendmsg's limits to msg_controllen:
// above INT_MAX, or above optmem (net.core.optmem_max, which bounds
// sock_kmalloc), the call fails with ENOBUFS before the control bytes are
// read.
func CheckControllen(controllen uint64, optmem int) error {
	if controllen > intMaxU || controllen > uint64(optmem) {
		return ErrNoBufs
	}
	return nil
}

// Cmsg is one control message; Data aliases the control buffer it was
// parsed from.
type Cmsg struct {
	Level, Type int32
	// Len is cmsg_len: header and data.
	Len  uint64
	Data []byte
}

// NextCmsg walks a control buffer as the kernel's for_each_cmsghdr does and
// checks each message with CMSG_OK: it returns the message at off (the
// first is at 0), the offset of the next one, and ok false when there are
// no more messages. A message whose cmsg_len is below CmsghdrSize or past
// the buffer's end is ErrInvalid, the protocols' answer. It never panics.
func NextCmsg(ctl []byte, off int) (c Cmsg, next int, ok bool, err error) {
	if off < 0 || off+CmsghdrSize > len(ctl) {
		return Cmsg{}, len(ctl), false, nil
	}
	l := hostEndian.Uint64(ctl[off:])
	if l < CmsghdrSize || l > uint64(len(ctl)-off) {
		return Cmsg{}, len(ctl), false, ErrInvalid
	}
	c = Cmsg{
		Level: int32(hostEndian.Uint32(ctl[off+8:])),
		Type:  int32(hostEndian.Uint32(ctl[off+12:])),
		Len:   l,
		Data:  ctl[off+CmsghdrSize : off+int(l)],
	}
	next = off + int((l+7)&^7)
	if next < off || next > len(ctl) {
		next = len(ctl)
	}
	return c, next, true, nil
}

// AppendCmsg appends one control message (header, data, alignment padding:
// CMSG_SPACE(len(data)) bytes) to b, whose length must be a multiple of 8,
// as every CMSG_NXTHDR is.
func AppendCmsg(b []byte, level, typ int32, data []byte) []byte {
	var h [CmsghdrSize]byte
	hostEndian.PutUint64(h[0:], uint64(CmsghdrSize+len(data)))
	hostEndian.PutUint32(h[8:], uint32(level))
	hostEndian.PutUint32(h[12:], uint32(typ))
	b = append(b, h[:]...)
	b = append(b, data...)
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	return b
}

// Ucred is struct ucred (SCM_CREDENTIALS).
type Ucred struct {
	Pid      int32
	Uid, Gid uint32
}

// UcredSize is sizeof(struct ucred).
const UcredSize = 12

// DecodeUcred decodes SCM_CREDENTIALS data; __scm_send wants exactly
// CMSG_LEN(sizeof(struct ucred)), else ErrInvalid.
func DecodeUcred(data []byte) (Ucred, error) {
	if len(data) != UcredSize {
		return Ucred{}, ErrInvalid
	}
	return Ucred{Pid: int32(hostEndian.Uint32(data)), Uid: hostEndian.Uint32(data[4:]), Gid: hostEndian.Uint32(data[8:])}, nil
}

// EncodeUcred encodes SCM_CREDENTIALS data.
func EncodeUcred(u Ucred) []byte {
	b := make([]byte, UcredSize)
	hostEndian.PutUint32(b, uint32(u.Pid))
	hostEndian.PutUint32(b[4:], u.Uid)
	hostEndian.PutUint32(b[8:], u.Gid)
	return b
}

// Fds decodes SCM_RIGHTS data as scm_fp_copy counts it: (cmsg_len -
// CmsghdrSize) / 4 descriptors, any trailing bytes ignored; more than
// ScmMaxFd is ErrInvalid. dst must hold them.
func Fds(data []byte, dst []int32) (int, error) {
	n := len(data) / 4
	if n > ScmMaxFd {
		return 0, ErrInvalid
	}
	if n > len(dst) {
		return 0, ErrBufferTooSmall
	}
	for i := 0; i < n; i++ {
		dst[i] = int32(hostEndian.Uint32(data[4*i:]))
	}
	return n, nil
}

// ScmMaxFd is SCM_MAX_FD: the most descriptors one SCM_RIGHTS message (and
// one sendmsg) carries.
const ScmMaxFd = 253

// DecodeMmsghdr decodes entry i of a struct mmsghdr array held in b.
func DecodeMmsghdr(b []byte, i int) (Msghdr, error) {
	off := i * MmsghdrSize
	if i < 0 || off+MsghdrSize > len(b) {
		return Msghdr{}, ErrInvalid
	}
	return DecodeMsghdr(b[off : off+MsghdrSize])
}

// SendFlagsInvalid reports flags sendmsg and sendmmsg refuse with EINVAL
// before looking at anything else.
func SendFlagsInvalid(flags uint32) bool { return flags&MsgCmsgCompat != 0 }

// Sentinels for the send structs' limits.
var (
	// ErrNoBufs: msg_controllen above INT_MAX or optmem_max (ENOBUFS).
	ErrNoBufs = &Error{unix.ENOBUFS, "args: control data too large (ENOBUFS)"}
	// ErrMsgSize: msg_iovlen above UIO_MAXIOV (EMSGSIZE).
	ErrMsgSize = &Error{unix.EMSGSIZE, "args: too many iovecs (EMSGSIZE)"}
)

// ReadIovData copies the bytes the iovecs describe, starting skip bytes in,
// into dst, like copy_from_iter: it stops at the first unreadable byte and
// returns how many bytes it copied (ErrFault only when it could copy none
// of a non-empty dst). remote is scratch for at most UioMaxIov entries.
func ReadIovData(tid int, iovs []Iovec, skip uint64, dst []byte, remote []unix.RemoteIovec) (int, error) {
	want := len(dst)
	if want == 0 {
		return 0, nil
	}
	k := 0
	left := uint64(want)
	for _, v := range iovs {
		if left == 0 || k == len(remote) {
			break
		}
		if skip >= v.Len {
			skip -= v.Len
			continue
		}
		base, l := v.Base+skip, v.Len-skip
		skip = 0
		l = min(l, left)
		remote[k] = unix.RemoteIovec{Base: uintptr(base), Len: int(l)}
		k++
		left -= l
	}
	want -= int(left)
	if want == 0 {
		return 0, nil
	}
	n, err := processVMReadvN(tid, dst[:want], remote[:k])
	if err != nil {
		return 0, mapReadErr(err)
	}
	if n == 0 {
		return 0, ErrFault
	}
	return n, nil
}
