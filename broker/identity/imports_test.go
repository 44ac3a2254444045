package identity_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestImports holds the package to what doc.go says: storage and upstream
// of the project's packages, and neither the broker, the OpenID Connect
// library nor net/http.
func TestImports(t *testing.T) {
	importcheck.Only(t, []string{
		"github.com/idbroker/broker/storage",
		"github.com/idbroker/broker/upstream",
		"github.com/google/uuid",
	}, "net/http")
}
