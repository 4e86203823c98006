package enforcer

import "testing"

// lastComponent is what the kernel's parent lookup leaves as the name to
// act on, and noEntry the names it refuses to create, remove or rename:
// samePrepared accepts the worker's call on those only.
func TestLastComponentAndNoEntry(t *testing.T) {
	for _, tc := range []struct {
		path, last string
		noEntry    bool
	}{
		{".", ".", true},
		{"./", ".", true},
		{"..", "..", true},
		{"a/..", "..", true},
		{"a/.//", ".", true},
		{"/", "/", true},
		{"///", "/", true},
		{"/tmp/.", ".", true},
		{"a", "a", false},
		{"a/b/", "b", false},
		{"/a/b//", "b", false},
		{"...", "...", false},
		{".hidden", ".hidden", false},
		{"", "", false},
		{"a/..b", "..b", false},
	} {
		if got := lastComponent(tc.path); got != tc.last || noEntry(got) != tc.noEntry {
			t.Errorf("lastComponent(%q) = %q (noEntry %v), want %q (%v)", tc.path, got, noEntry(got), tc.last, tc.noEntry)
		}
	}
}
