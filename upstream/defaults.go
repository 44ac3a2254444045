package upstream

import "time"

// Limits every connector that verifies tokens shares.
const (
	// DefaultMaxClockSkew is the leeway on a token's times when a
	// connector's configuration sets none.
	DefaultMaxClockSkew = time.Minute
	// MaxMaxClockSkew bounds a connector's clock skew: more leeway than
	// this would keep expired tokens alive.
	MaxMaxClockSkew = 5 * time.Minute
	// DefaultHTTPTimeout bounds every call to an upstream when a
	// connector's configuration gives no HTTP client.
	DefaultHTTPTimeout = 10 * time.Second
)
