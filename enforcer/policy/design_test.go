package policy

import (
	"os"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

// designSection returns docs/design.md and the bounds of its section n
// ("5"): from the "## n." heading to the next second-level heading.
func designSection(t *testing.T, n string) (doc string, start, end int) {
	t.Helper()
	b, err := os.ReadFile("../../docs/design.md")
	if err != nil {
		t.Fatalf("reading the design contract: %v", err)
	}
	doc = string(b)
	i := strings.Index(doc, "\n## "+n+".")
	if i < 0 {
		t.Fatalf("docs/design.md has no section %s", n)
	}
	start, end = i+1, len(doc)
	if j := strings.Index(doc[start+1:], "\n## "); j >= 0 {
		end = start + 1 + j + 1
	}
	return doc, start, end
}

// TestDesignPolicyExamplesParse parses every YAML example of docs/design.md §5
// (the policy format's contract), so the contract never shows a policy vigil
// would refuse.
func TestDesignPolicyExamplesParse(t *testing.T) {
	doc, start, end := designSection(t, "5")
	n := 0
	for at := start; ; {
		i := strings.Index(doc[at:end], "```yaml\n")
		if i < 0 {
			break
		}
		from := at + i + len("```yaml\n")
		j := strings.Index(doc[from:end], "```")
		if j < 0 {
			t.Fatal("unterminated yaml block in docs/design.md §5")
		}
		n++
		// Blank lines in front keep the positions of errors those of the file.
		src := strings.Repeat("\n", strings.Count(doc[:from], "\n")) + doc[from:from+j]
		if _, err := Parse("docs/design.md", []byte(src)); err != nil {
			t.Errorf("example %d of docs/design.md §5 does not parse:\n%v", n, err)
		}
		at = from + j + 3
	}
	if n == 0 {
		t.Fatal("docs/design.md §5 has no yaml example")
	}
}

// TestDesignDocumentsEveryMatchKey checks that the key table of
// docs/design.md §5 has a row for every match key the parser accepts.
func TestDesignDocumentsEveryMatchKey(t *testing.T) {
	doc, start, end := designSection(t, "5")
	sec := doc[start:end]
	keys := 0
	for i := 0; i < 8; i++ {
		name := sysinfo.Key(1 << i).String()
		if name == "unknown" {
			continue
		}
		keys++
		if !strings.Contains(sec, "\n| `"+name+"` |") {
			t.Errorf("docs/design.md §5 has no table row for match key %q", name)
		}
	}
	if keys == 0 {
		t.Fatal("no match keys found in sysinfo")
	}
}
