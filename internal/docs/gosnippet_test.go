package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Every ```go block of the README and docs/ is a whole program that
// builds against this module and passes go vet, so the snippets a
// service team copies keep compiling as the packages they use change.
func TestDocs_EveryGoBlockVets(t *testing.T) {
	files, err := Files("../..")
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	vetted := 0
	for _, f := range files {
		blocks, err := Blocks(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			if b.Lang != "go" {
				continue
			}
			if !strings.HasPrefix(strings.TrimSpace(b.Text), "package ") {
				t.Errorf("%s:%d: a go block must be a whole file, from its package clause", b.File, b.Line)
				continue
			}
			// A file named on the command line builds as its own package
			// with the imports of the module it is vetted from.
			file := filepath.Join(t.TempDir(), "main.go")
			if err := os.WriteFile(file, []byte(b.Text), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("go", "vet", file)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s:%d: the go block does not vet: %v\n%s", b.File, b.Line, err, out)
			}
			vetted++
		}
	}
	if vetted < 2 {
		t.Errorf("only %d go blocks vetted: is the extraction broken?", vetted)
	}
}
