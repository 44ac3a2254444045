package ratelimit_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestImports holds the package to its doc comment.
func TestImports(t *testing.T) {
	importcheck.Only(t, []string{
		"github.com/idbroker/broker/storage",
		"github.com/prometheus/client_golang/prometheus",
	})
}
