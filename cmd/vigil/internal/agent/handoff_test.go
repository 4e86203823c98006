package agent

import (
	"errors"
	"strings"
	"testing"
)

// runcState is what runc 1.1.5 sends (libcontainer/process_linux.go,
// procSeccomp), byte for byte apart from the values.
const runcState = `{"ociVersion":"1.0.2-dev","fds":["seccompFd"],"pid":4242,"metadata":"policy=web.yaml",` +
	`"state":{"ociVersion":"1.0.2-dev","id":"web-1","status":"creating","pid":4242,"bundle":"/run/bundles/web-1",` +
	`"annotations":{"io.kubernetes.pod":"x"}}}`

func TestFrameFindsTheEndOfTheFirstObject(t *testing.T) {
	cases := []struct {
		name string
		in   string
		end  int
		err  error
	}{
		{"empty", "", 0, ErrIncomplete},
		{"whitespace", " \n\t", 0, ErrIncomplete},
		{"prefix", `{"ociVersion":"1.0`, 0, ErrIncomplete},
		{"prefix in a string with an escaped quote", `{"a":"x\"`, 0, ErrIncomplete},
		{"whole", `{"a":1}`, 7, nil},
		{"leading space", "  {\"a\":1}", 9, nil},
		{"second message follows", `{"a":1}{"b":2}`, 7, nil},
		{"not an object", `["seccompFd"]`, 0, ErrMalformed},
		{"not JSON", "hello", 0, ErrMalformed},
		{"syntax error inside", `{"a":}`, 0, ErrMalformed},
		{"NUL byte", "\x00{}", 0, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			end, err := Frame([]byte(tc.in))
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("Frame(%q) error = %v, want %v", tc.in, err, tc.err)
			}
			if end != tc.end {
				t.Fatalf("Frame(%q) end = %d, want %d", tc.in, end, tc.end)
			}
		})
	}
}

func TestTrailingSeesASecondMessage(t *testing.T) {
	b := []byte("{\"a\":1} \n")
	if Trailing(b, 7) {
		t.Fatal("whitespace after the object counted as a second message")
	}
	b = []byte(`{"a":1} {"b":2}`)
	if !Trailing(b, 7) {
		t.Fatal("second object not seen")
	}
}

func TestParseHandoffAcceptsWhatRuncSends(t *testing.T) {
	h, err := ParseHandoff([]byte(runcState), 1)
	if err != nil {
		t.Fatal(err)
	}
	if h.ID() != "web-1" || h.Seccomp != 0 || h.Pid != 4242 || h.Metadata != "policy=web.yaml" ||
		h.State.Bundle != "/run/bundles/web-1" || string(h.State.Status) != "creating" || h.Version != "1.0.2-dev" ||
		h.State.Annotations["io.kubernetes.pod"] != "x" {
		t.Fatalf("parsed %+v", h)
	}
}

func TestParseHandoffRefusesWhatItCannotTrust(t *testing.T) {
	state := func(extra string) string {
		return `{"ociVersion":"1.0.2","pid":1,"state":{"id":"c1","status":"running"}` + extra + `}`
	}
	cases := []struct {
		name    string
		payload string
		nfds    int
		err     error
		want    string
	}{
		{"fds missing", state(""), 1, ErrFds, `no "fds" list`},
		{"fds null", state(`,"fds":null`), 1, ErrFds, `no "fds" list`},
		{"fds empty, one fd arrived", state(`,"fds":[]`), 1, ErrFds, "names 0 descriptors but 1 arrived"},
		{"fds wrong type", state(`,"fds":"seccompFd"`), 1, ErrMalformed, "cannot unmarshal"},
		{"no seccompFd", state(`,"fds":["pidFd"]`), 1, ErrFds, `no "seccompFd"`},
		{"seccompFd twice", state(`,"fds":["seccompFd","seccompFd"]`), 2, ErrFds, "listed twice"},
		{"more fds than names", state(`,"fds":["seccompFd"]`), 3, ErrFds, "names 1 descriptors but 3 arrived"},
		{"more names than fds", state(`,"fds":["seccompFd","pidFd"]`), 1, ErrFds, "names 2 descriptors but 1 arrived"},
		{"no fds attached", state(`,"fds":["seccompFd"]`), 0, ErrFds, "but 0 arrived"},
		{"version 2", strings.Replace(state(`,"fds":["seccompFd"]`), "1.0.2", "2.0.0", 1), 1, ErrVersion, `"2.0.0"`},
		{"version missing", `{"fds":["seccompFd"],"state":{"id":"c1"}}`, 1, ErrVersion, `""`},
		{"version 0.x other than crun's", strings.Replace(state(`,"fds":["seccompFd"]`), "1.0.2", "0.1.0", 1), 1, ErrVersion, `"0.1.0"`},
		{"version 10.x", strings.Replace(state(`,"fds":["seccompFd"]`), "1.0.2", "10.0", 1), 1, ErrVersion, `"10.0"`},
		{"id missing", `{"ociVersion":"1.0.2","fds":["seccompFd"],"state":{}}`, 1, ErrMalformed, "state.id is empty"},
		{"id with a newline", `{"ociVersion":"1.0.2","fds":["seccompFd"],"state":{"id":"a\nb"}}`, 1, ErrMalformed, "control character"},
		{"id too long", `{"ociVersion":"1.0.2","fds":["seccompFd"],"state":{"id":"` + strings.Repeat("x", 2000) + `"}}`, 1, ErrMalformed, "2000 bytes"},
		{"negative pid", `{"ociVersion":"1.0.2","fds":["seccompFd"],"pid":-1,"state":{"id":"c1"}}`, 1, ErrMalformed, "negative pid"},
		{"pid not a number", `{"ociVersion":"1.0.2","fds":["seccompFd"],"pid":"1","state":{"id":"c1"}}`, 1, ErrMalformed, "cannot unmarshal"},
		{"truncated", `{"ociVersion":"1.0.2","fds":["secc`, 1, ErrMalformed, "unexpected EOF"},
		{"array", `[]`, 1, ErrMalformed, "cannot unmarshal array"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseHandoff([]byte(tc.payload), tc.nfds)
			if err == nil {
				t.Fatalf("accepted %+v", h)
			}
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want %v containing %q", err, tc.err, tc.want)
			}
		})
	}
}

func TestParseHandoffAcceptsAny1xVersionCrunsAndExtraFdNames(t *testing.T) {
	for _, v := range []string{"1", "1.0.0", "1.0.2-dev", "1.2.1", "1.9.9+crun", "0.2.0"} {
		p := `{"ociVersion":"` + v + `","fds":["pidFd","seccompFd"],"state":{"id":"c"},"future":{"field":1}}`
		h, err := ParseHandoff([]byte(p), 2)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if h.Seccomp != 1 || h.Version != v {
			t.Fatalf("%s: parsed %+v", v, h)
		}
	}
}

func TestParseMetadata(t *testing.T) {
	cases := []struct {
		in, policy, err string
	}{
		{"", "", ""},
		{"policy=web.yaml", "web.yaml", ""},
		{" policy=web.yaml ", "web.yaml", ""},
		{"policy=a.yaml,policy=b.yaml", "", "twice"},
		{"web.yaml", "", "not key=value"},
		{"polcy=web.yaml", "", "unknown key"},
		{"policy=", "", "empty policy name"},
		{"policy=../etc/shadow", "", "not a path"},
		{"policy=/etc/shadow", "", "not a path"},
		{"policy=sub/web.yaml", "", "not a path"},
		{"policy=..", "", "dot"},
		{"policy=.hidden.yaml", "", "dot"},
		{"policy=a\x00b", "", "control character"},
		{"policy=" + strings.Repeat("a", 300), "", "255"},
	}
	for _, tc := range cases {
		m, err := ParseMetadata(tc.in)
		if tc.err == "" {
			if err != nil || m.Policy != tc.policy {
				t.Errorf("ParseMetadata(%q) = %+v, %v; want policy %q", tc.in, m, err, tc.policy)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrMetadata) || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ParseMetadata(%q) error %v, want ErrMetadata containing %q", tc.in, err, tc.err)
		}
	}
}
