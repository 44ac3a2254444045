// Package testenv holds the fake upstream identity providers every test in
// the project uses: an Auth0-like tenant, an Entra ID-like multi-tenant
// endpoint and a WorkOS-like API. Each is an httptest.Server that signs real
// tokens with keys generated for the test and serves them from a real JWKS,
// so the code under test verifies them exactly as it would in production.
//
// Fakes approve every login for a user the test chose (SetNextUser, or
// AddUser matched by login_hint), and mint tokens directly for token
// exchange tests. TokenOptions change exactly one property of a minted
// token, so each bad token can be compared with a passing control.
//
// testenv imports none of the project's packages.
package testenv
