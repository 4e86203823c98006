package observe

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseSize parses a buffer size: a byte count with an optional binary
// suffix, K, M or G (also KiB, MiB, GiB, KB, MB, GB, all meaning powers of
// 1024, as ring buffer sizes are): "16M", "262144", "1GiB".
func ParseSize(s string) (int, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	upper := strings.ToUpper(t)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(upper, u.suffix) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number of bytes, optionally with K, M or G", s)
	}
	if n > (1<<31)/mult {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return int(n * mult), nil
}
