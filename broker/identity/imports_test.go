package identity_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports holds the package to what doc.go says: storage and upstream
// of the project's packages, and neither the broker, the OpenID Connect
// library nor net/http.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{
		"github.com/idbroker/broker/storage":  true,
		"github.com/idbroker/broker/upstream": true,
		"github.com/google/uuid":              true,
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
			if path == "net/http" || (!stdlib && !allowed[path]) {
				t.Errorf("%s imports %q", name, path)
			}
		}
	}
}
