// Package ratelimit owns the broker's abuse limits: a Limit (so many
// events per window), the Limiter that counts events against one in
// storage, so that a limit holds across replicas, and the keys limits are
// counted under. A key names whoever a stranger could not lock out by
// using it (docs/design.md rule 7): a party (an email address, a client
// id) as seen from one client address, or the address alone.
//
// Of the project it imports storage; it must not import the
// broker or any part of it that serves an endpoint (imports_test.go holds
// it to that).
package ratelimit
