package conventions

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is the module root, seen from this package's directory (go test
// runs a package's tests there).
const repoRoot = "../.."

// unsafeAllowed reports whether the Go file at path may import unsafe: a
// test, a file whose name says it (…_unsafe.go, so that every use of unsafe
// is found by its file name and reviewed as such), or bpf2go's output.
func unsafeAllowed(path string) bool {
	name := filepath.Base(path)
	for _, suffix := range []string{"_test.go", "_unsafe.go", "_bpfel.go", "_bpfeb.go"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// skipDir reports whether the walk leaves out directory name: build output,
// test data and other modules' trees.
func skipDir(name string) bool {
	switch name {
	case ".git", "bin", "testdata", "vendor", ".cache":
		return true
	}
	return false
}

// TestUnsafeOnlyInUnsafeFiles fails for every non-test Go file that imports
// unsafe while its name does not end in _unsafe.go.
func TestUnsafeOnlyInUnsafeFiles(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != repoRoot && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		checked++
		if unsafeAllowed(path) {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "unsafe" {
				rel, _ := filepath.Rel(repoRoot, path)
				t.Errorf("%s imports unsafe: move the code that needs it into a file named …_unsafe.go", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("checked only %d Go files under %s; is the walk looking at the repository?", checked, repoRoot)
	}
}

func TestUnsafeAllowed(t *testing.T) {
	for path, want := range map[string]bool{
		"enforcer/args/mem_unsafe.go":     true,
		"enforcer/args/mem.go":            false,
		"enforcer/decide_test.go":         true,
		"loader/vigil_bpfel.go":           true,
		"enforcer/unsafe.go":              false,
		"enforcer/unsafe_helpers.go":      false,
		"enforcer/notify/notify_unsafe.g": false,
	} {
		if got := unsafeAllowed(path); got != want {
			t.Errorf("unsafeAllowed(%q) = %v, want %v", path, got, want)
		}
	}
}
