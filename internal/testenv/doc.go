// Package testenv holds what the project's tests stand on instead of real
// services. The fake upstreams are an Auth0-like tenant, an Entra ID-like
// multi-tenant endpoint (two tenants, organizations and common), a
// WorkOS-like API and a legacy session-validation service. Each is an
// httptest.Server that signs real tokens with keys generated for the test
// and serves them from a real JWKS, so the code under test verifies them
// exactly as it would in production.
//
// Fakes approve every login for a user the test chose (SetNextUser, or
// AddUser matched by login_hint), and mint tokens directly for token
// exchange tests. TokenOptions change exactly one property of a minted
// token, so each bad token can be compared with a passing control.
//
// Beside them: a Mailer that keeps the one-time codes a person would find
// in their inbox, a Browser that keeps cookies and submits forms as a
// person would (with PKCE for the authorization requests it starts), a
// TCPProxy that a test can cut to take a dependency away mid-request, and
// a SyncBuffer for logs written by one goroutine and read by another.
//
// testenv imports only upstream/otp (for the Mailer's message type) of the
// project's packages, so any other package's tests can use it.
package testenv
