package observe

import (
	"strconv"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

const hexDigits = "0123456789abcdef"

// jsonSafe marks the bytes a JSON string holds as they are: printable
// ASCII but '"' and '\\'.
var jsonSafe = func() (t [256]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// appendJSONString appends s as a JSON string. Control characters, quotes
// and backslashes are escaped; bytes that are not UTF-8 (a path is any
// bytes but NUL and '/') become U+FFFD, as encoding/json does, so every
// line stays valid JSON.
func appendJSONString[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if jsonSafe[b] {
			i++
			continue
		}
		if b < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		var r rune
		var size int
		switch v := any(s).(type) {
		case string:
			r, size = utf8.DecodeRuneInString(v[i:])
		case []byte:
			r, size = utf8.DecodeRune(v[i:])
		}
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendKey appends ,"key": (or "key": first in an object).
func appendKey(dst []byte, key string) []byte {
	if n := len(dst); n > 0 && dst[n-1] != '{' && dst[n-1] != '[' {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

// errnoName names a negative return value: E* for errno values, and the
// kernel-internal restart codes strace shows when a signal interrupted a
// call (include/linux/errno.h); "" for anything else.
func errnoName(ret int64) string {
	if ret >= 0 || ret < -4095 {
		return ""
	}
	switch -ret {
	case 512:
		return "ERESTARTSYS"
	case 513:
		return "ERESTARTNOINTR"
	case 514:
		return "ERESTARTNOHAND"
	case 516:
		return "ERESTART_RESTARTBLOCK"
	}
	return unix.ErrnoName(unix.Errno(-ret))
}

// clock turns bpf_ktime_get_ns() (CLOCK_MONOTONIC) into wall-clock text,
// formatting the part down to the second once per second.
type clock struct {
	offset int64 // realtime - monotonic, ns
	sec    int64 // wall second prefix holds
	prefix []byte
}

func newClock() *clock {
	var mono unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono)
	wall := time.Now().UnixNano()
	return &clock{offset: wall - mono.Nano(), sec: -1}
}

// append appends the wall time of monotonic ns as RFC 3339 UTC with
// microseconds.
func (c *clock) append(dst []byte, mono uint64) []byte {
	ns := int64(mono) + c.offset
	sec, frac := ns/1e9, ns%1e9
	if sec != c.sec {
		c.sec = sec
		c.prefix = time.Unix(sec, 0).UTC().AppendFormat(c.prefix[:0], "2006-01-02T15:04:05")
	}
	dst = append(dst, c.prefix...)
	us := frac / 1e3
	dst = append(dst, '.')
	for d := int64(100000); d > 0; d /= 10 {
		dst = append(dst, byte('0'+us/d%10))
	}
	return append(dst, 'Z')
}

// appendMicros appends ns as microseconds with three decimals.
func appendMicros(dst []byte, ns uint64) []byte {
	dst = strconv.AppendUint(dst, ns/1000, 10)
	dst = append(dst, '.')
	f := ns % 1000
	return append(dst, byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
}
