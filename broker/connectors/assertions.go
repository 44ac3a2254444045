package connectors

import "github.com/idbroker/broker/upstream"

// AcceptsIdentityAssertions reports whether a connector open now accepts
// identity assertion grants (ID-JAGs), for discovery to list the
// jwt-bearer grant that redeems them.
func (s *Set) AcceptsIdentityAssertions() bool {
	for _, conn := range s.snap.Load().byID {
		if v, ok := conn.(upstream.AssertionVerifier); ok && v.AcceptsIdentityAssertions() {
			return true
		}
	}
	return false
}
