// Package importcheck holds a package to the imports its doc.go allows,
// for that package's tests. It reads the non-test Go files of the
// package under test (the test's working directory) and imports nothing
// of the project.
package importcheck

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Only fails t for every import of the package in the working directory
// that is neither the standard library nor in allowed, and for every
// standard library package in forbidden. It does not look at test files.
func Only(t testing.TB, allowed []string, forbidden ...string) {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			stdlib := !strings.Contains(strings.SplitN(path, "/", 2)[0], ".")
			if slices.Contains(forbidden, path) || (!stdlib && !slices.Contains(allowed, path)) {
				t.Errorf("%s imports %q", name, path)
			}
		}
	}
}
