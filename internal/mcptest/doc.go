// Package mcptest starts what the MCP tests run the official SDKs'
// clients against: a real broker on memory storage, whose one-time codes
// a test reads from its Mailer, with the sample MCP server of
// examples/mcp/whoami, and a second one, registered as resources and
// served over TLS as a resource identifier must be. The Go SDK's tests
// (examples/mcp) and the TypeScript SDK's (internal/e2e) share it.
//
// A test may add Extra settings: client registration, client ID metadata
// documents and the roots that trust their servers.
//
// It is for tests only: it imports the broker, the test fakes and the
// sample server, never an MCP SDK.
package mcptest
