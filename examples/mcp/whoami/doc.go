// Package whoami is a sample MCP server of the kind the platform's
// backends host: one tool, whoami, served over the Streamable HTTP
// transport of the official Go MCP SDK, protected by the broker's
// resource package as MCP's authorization specification asks of a
// server. Its resource identifier is its MCP endpoint's URL, which is
// the audience it accepts; it publishes its RFC 9728 metadata naming
// the broker at the path-inserted well-known URL, and every refusal
// points there in its WWW-Authenticate challenge.
//
// It exists to show, and to let the tests prove, what a user runs: an
// MCP client that knows only the server's URL finds the broker, signs
// the user in there, and calls the tool with a token for this server
// alone.
//
// It stands on the resource package and the MCP SDK alone: like any
// downstream service, it must not import the broker.
package whoami
