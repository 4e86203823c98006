package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DevKind is the file type a mknod call creates, as far as the `dev` key
// cares.
type DevKind uint8

// Device kinds. DevOther is the zero value so that a Call whose caller forgot
// to set the kind never matches a "c" or "b" rule.
const (
	DevOther DevKind = iota // fifo, socket or regular file: no device number
	DevChar                 // S_IFCHR
	DevBlock                // S_IFBLK
)

// String returns "c", "b" or "other", the spelling of dev rules.
func (k DevKind) String() string {
	switch k {
	case DevChar:
		return "c"
	case DevBlock:
		return "b"
	}
	return "other"
}

// The kernel's dev_t has a 12-bit major and a 20-bit minor
// (include/linux/kdev_t.h new_decode_dev): larger numbers cannot name a
// device, so a rule with one is a typo.
const (
	maxMajor = 1<<12 - 1
	maxMinor = 1<<20 - 1
)

// devPattern is one compiled `dev` entry: "c 1:3", "b 8:0", "c 136:*".
type devPattern struct {
	kind     DevKind
	major    uint32
	minor    uint32
	anyMinor bool
}

func parseDev(s string) (devPattern, error) {
	var d devPattern
	f := strings.Fields(s)
	if len(f) != 2 {
		return d, fmt.Errorf("invalid device %s (want \"c MAJOR:MINOR\" or \"b MAJOR:MINOR\", minor may be *)", quote(s))
	}
	switch f[0] {
	case "c":
		d.kind = DevChar
	case "b":
		d.kind = DevBlock
	default:
		return d, fmt.Errorf("invalid device type %s (want c for character or b for block)", quote(f[0]))
	}
	maj, mnr, ok := strings.Cut(f[1], ":")
	if !ok {
		return d, fmt.Errorf("invalid device number %s (want MAJOR:MINOR, like 1:3)", quote(f[1]))
	}
	n, err := parseDevNum(maj, maxMajor)
	if err != nil {
		return d, fmt.Errorf("major %w", err)
	}
	d.major = n
	if mnr == "*" {
		d.anyMinor = true
		return d, nil
	}
	n, err = parseDevNum(mnr, maxMinor)
	if err != nil {
		return d, fmt.Errorf("minor %w", err)
	}
	d.minor = n
	return d, nil
}

func parseDevNum(s string, limit uint64) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || s == "" {
		return 0, fmt.Errorf("%s is not a decimal number", quote(s))
	}
	if n > limit {
		return 0, fmt.Errorf("%d is out of range (0-%d)", n, limit)
	}
	return uint32(n), nil
}

func (d *devPattern) match(v *Dev) bool {
	return v.Kind == d.kind && v.Major == d.major && (d.anyMinor || v.Minor == d.minor)
}

// xattrNameMax is XATTR_NAME_MAX (include/uapi/linux/limits.h).
const xattrNameMax = 255

// xattrNamespaces are the prefixes the kernel accepts (fs/xattr.c); any
// other name fails with EOPNOTSUPP, so a rule naming one is a typo.
var xattrNamespaces = []string{"security.", "system.", "trusted.", "user."}

func parseXattr(s string) (wildcard, error) {
	switch {
	case s == "":
		return wildcard{}, errors.New("empty xattr name")
	case strings.IndexByte(s, 0) >= 0:
		return wildcard{}, errors.New("xattr name contains a NUL byte")
	case !utf8.ValidString(s):
		return wildcard{}, errors.New("xattr name is not valid UTF-8")
	case len(s) > xattrNameMax:
		return wildcard{}, errors.New("xattr name is longer than XATTR_NAME_MAX (255)")
	}
	// Check the namespace only when it is spelled out literally: "*" and
	// "*.overlay.*" are fine, "trused.overlay.opaque" is not.
	if ns, _, ok := strings.Cut(s, "."); ok && !strings.ContainsAny(ns, "*?") {
		known := false
		for _, k := range xattrNamespaces {
			known = known || k == ns+"."
		}
		if !known {
			return wildcard{}, fmt.Errorf("unknown xattr namespace %s (want security., system., trusted. or user.)", quote(ns+"."))
		}
	} else if !ok && !strings.ContainsAny(s, "*?") {
		return wildcard{}, fmt.Errorf("xattr name %s has no namespace (want like user.%s)", quote(s), clip(s))
	}
	return newWildcard(s), nil
}
