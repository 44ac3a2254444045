// Package e2e holds the browser test of the login pages: a Go test starts
// a broker (memory storage, a test mailer, a fake Auth0 behind a domain)
// and a small client application, then runs the Playwright script in the
// repository's e2e/ folder against them in headless Chromium. Its MCP
// test runs the TypeScript MCP SDK's client (e2e/mcp.spec.mjs) against a
// broker and the sample MCP server of examples/mcp/whoami, in node alone.
// The package has no code of its own outside the test.
package e2e
