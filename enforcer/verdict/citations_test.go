package verdict

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// This file sits beside TestOnlyVerdictAnswersContinue because both hold the
// whole repository to a rule, not this package.

// trackedFiles returns the repository's root and the contents of its tracked
// text files (binary files, such as committed BPF objects, are left out).
func trackedFiles(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	root := strings.TrimSpace(string(out))
	list, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("listing tracked files: %v", err)
	}
	files := map[string][]byte{}
	for _, name := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		b, err := os.ReadFile(filepath.Join(root, name))
		if os.IsNotExist(err) {
			continue // deleted in the work tree, not yet committed
		}
		if err != nil {
			t.Fatalf("reading %s: %v", name, err)
		}
		if bytes.IndexByte(b[:min(len(b), 8000)], 0) >= 0 {
			continue
		}
		files[name] = b
	}
	return root, files
}

// TestRepositoryCitesOnlyItself keeps the repository self-contained: code,
// docs, policies and tests cite documents inside it (docs/design.md for the
// contract), never files beside the checkout that a reader of the repository
// does not have.
func TestRepositoryCitesOnlyItself(t *testing.T) {
	_, files := trackedFiles(t)
	// Built by concatenation so that this file does not match itself.
	outside := []string{".." + "/shared", "/work" + "/shared", "DESIGN" + ".md", "STYLE" + ".md"}
	for name, b := range files {
		if !containsAny(b, outside) {
			continue
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, s := range outside {
				if strings.Contains(line, s) {
					t.Errorf("%s:%d cites %q, which is outside the repository; cite docs/design.md (or another file under docs/) instead:\n\t%s",
						name, i+1, s, strings.TrimSpace(line))
				}
			}
		}
	}
}

func containsAny(b []byte, subs []string) bool {
	for _, s := range subs {
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

// citation matches "docs/design.md §N" (also "docs/design.md` §N" and the
// markdown link form "[...](docs/design.md) §N") with N like 2 or 2.1.
var citation = regexp.MustCompile("docs/design\\.md[`\\])]*\\s*§\\s*([0-9]+(?:\\.[0-9]+)*)")

// heading matches a numbered section heading of docs/design.md: "## 2. ..."
// or "### 2.1 ...".
var heading = regexp.MustCompile(`(?m)^#{2,4} ([0-9]+(?:\.[0-9]+)*)[. ]`)

// TestDesignCitationsNameSections checks that every "docs/design.md §N" in
// the repository names a section docs/design.md has, so that renumbering the
// contract cannot leave citations pointing at the wrong text.
func TestDesignCitationsNameSections(t *testing.T) {
	root, files := trackedFiles(t)
	design, err := os.ReadFile(filepath.Join(root, "docs", "design.md"))
	if err != nil {
		t.Fatalf("the design contract is missing: %v", err)
	}
	sections := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(string(design), -1) {
		sections[m[1]] = true
	}
	for _, want := range []string{"1", "2", "2.1", "3", "4", "5", "6", "7"} {
		if !sections[want] {
			t.Errorf("docs/design.md has no section %s (citations across the code rely on it)", want)
		}
	}
	cited := 0
	for name, b := range files {
		if !bytes.Contains(b, []byte("docs/design.md")) {
			continue
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range citation.FindAllStringSubmatch(line, -1) {
				cited++
				if !sections[m[1]] {
					t.Errorf("%s:%d cites docs/design.md §%s, which does not exist", name, i+1, m[1])
				}
			}
		}
	}
	if cited == 0 {
		t.Error("found no docs/design.md citation at all: the pattern no longer matches how the code cites it")
	}
}
