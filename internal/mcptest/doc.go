// Package mcptest starts what the MCP tests run the official SDKs'
// clients against: a real broker on memory storage, whose one-time codes
// a test reads from its Mailer, with the sample MCP server of
// examples/mcp/whoami, and a second one, registered as resources and
// served over TLS as a resource identifier must be. The Go SDK's tests
// (examples/mcp) and the TypeScript SDK's (internal/e2e) share it.
//
// A test may add a Feature: settings built on another branch. Until that
// branch is merged the broker does not know them and the test is
// skipped (or, for an optional feature, runs without them).
//
// It is for tests only: it imports the broker, the test fakes and the
// sample server, never an MCP SDK.
package mcptest
