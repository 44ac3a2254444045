package resource_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestPackage_ImportsOnlyWhatDocGoAllows holds the rule of doc.go: the
// package downstream services vendor imports nothing of the broker, and
// beyond the standard library only go-jose and google/uuid.
func TestPackage_ImportsOnlyWhatDocGoAllows(t *testing.T) {
	importcheck.Only(t, []string{
		"github.com/go-jose/go-jose/v4",
		"github.com/go-jose/go-jose/v4/jwt",
		"github.com/google/uuid",
	})
}
