package agent

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func FuzzParseHandoff(f *testing.F) {
	f.Add([]byte(runcState), uint8(1))
	f.Add([]byte(runcState+runcState), uint8(1))
	f.Add([]byte(`{"ociVersion":"1.0.0","fds":["pidFd","seccompFd"],"state":{"id":"c"}}`), uint8(2))
	f.Add([]byte(`{"ociVersion":"2","fds":["seccompFd"],"state":{"id":"c"}}`), uint8(1))
	f.Add([]byte(`{"fds":null}`), uint8(0))
	f.Add([]byte(`{"ociVersion":"1.0.2","fds":["seccompFd"],"state":{"id":"a\u0000b"}}`), uint8(1))
	f.Add([]byte(` {"ociVersion":"1.0`), uint8(1))
	f.Fuzz(func(t *testing.T, buf []byte, nfds uint8) {
		// The socket side first frames the stream, then parses the frame.
		end, err := Frame(buf)
		switch {
		case err == nil:
			if end <= 0 || end > len(buf) || !json.Valid(buf[:end]) {
				t.Fatalf("Frame(%q) = %d, not a complete value", buf, end)
			}
		case errors.Is(err, ErrIncomplete), errors.Is(err, ErrMalformed):
			if end != 0 {
				t.Fatalf("Frame(%q) = %d with error %v", buf, end, err)
			}
			// A complete, valid object is never reported incomplete.
			if errors.Is(err, ErrIncomplete) && json.Valid(buf) && strings.HasPrefix(strings.TrimSpace(string(buf)), "{") {
				t.Fatalf("Frame(%q) incomplete for a valid object", buf)
			}
			return
		default:
			t.Fatalf("Frame(%q): unclassified error %v", buf, err)
		}
		h, err := ParseHandoff(buf[:end], int(nfds))
		if err != nil {
			if h != nil {
				t.Fatal("handoff returned with an error")
			}
			for _, e := range []error{ErrMalformed, ErrVersion, ErrFds} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("ParseHandoff(%q, %d): unclassified error %v", buf[:end], nfds, err)
		}
		if len(h.FdNames) != int(nfds) || h.Seccomp < 0 || h.Seccomp >= int(nfds) || h.FdNames[h.Seccomp] != "seccompFd" {
			t.Fatalf("ParseHandoff(%q, %d) = %+v: seccomp index does not name an arrived fd", buf[:end], nfds, h)
		}
		if !supportedVersion(h.Version) || checkLabel("id", h.ID(), maxIDLen) != nil || h.Pid < 0 {
			t.Fatalf("ParseHandoff(%q, %d) accepted %+v", buf[:end], nfds, h)
		}
		// Whatever metadata got through must either select a plain file
		// name or be refused: never a path.
		if m, err := ParseMetadata(h.Metadata); err == nil && strings.ContainsAny(m.Policy, "/\x00") {
			t.Fatalf("metadata %q selects %q", h.Metadata, m.Policy)
		}
	})
}

func FuzzParseMetadata(f *testing.F) {
	for _, s := range []string{"", "policy=web.yaml", "policy=../x", "policy=a,policy=b", "policy=..", "x=y", "policy=a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMetadata(s)
		if err != nil {
			if !errors.Is(err, ErrMetadata) {
				t.Fatalf("ParseMetadata(%q): unclassified error %v", s, err)
			}
			return
		}
		p := m.Policy
		if p != "" && (strings.ContainsAny(p, "/\\\x00") || strings.HasPrefix(p, ".") || len(p) > 255) {
			t.Fatalf("ParseMetadata(%q) selects %q", s, p)
		}
	})
}

func FuzzParseNotifySocket(f *testing.F) {
	for _, s := range []string{"/run/systemd/notify", "@/org/freedesktop/systemd1/notify/1", "@", "", "vsock:2:9", "rel/x", "/a\nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		n, err := ParseNotifySocket(v)
		if err != nil {
			return
		}
		if n.Enabled() != (v != "") {
			t.Fatalf("ParseNotifySocket(%q): enabled %v", v, n.Enabled())
		}
		if n.Enabled() && v[0] != '/' && v[0] != '@' {
			t.Fatalf("ParseNotifySocket(%q) accepted a relative name", v)
		}
	})
}
