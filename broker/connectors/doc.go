// Package connectors owns the broker's upstreams as one Set: those of the
// configuration file, fixed, each opened through its type's registered
// Config in the order the file lists them, and those stored at run time,
// swapped in whole (Replace) when storage changes, with the settings the broker
// applies around every connector (its display name, its email domains
// for home realm discovery, its timeout, how often its users are
// re-checked), and the lookups the login flow, token exchange and refresh
// make: by id, by email domain, by token issuer.
//
// It serves no endpoint. Of the project it imports upstream and its
// registry (never a concrete connector package but otp, whose one
// connector is the one-time-code flow) and web for the login page's
// buttons; it must not import the broker or any part of it that serves an
// endpoint (imports_test.go holds it to that).
package connectors
