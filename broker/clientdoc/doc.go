// Package clientdoc owns OAuth Client ID Metadata Documents
// (draft-ietf-oauth-client-id-metadata-document, the registration the
// MCP authorization specification of 2025-11-25 prefers): a client_id
// that is an https URL names a JSON document of the client's metadata,
// which the Resolver fetches (through broker/safefetch, with a size cap
// and a timeout), checks against the draft and the broker's client rules,
// and turns into a third-party clients.Client that is never stored. It
// caches each document as its HTTP caching headers allow, within the
// operator's bounds; concurrent asks for one URL share one fetch; a
// refusal is the answer for a few seconds. It also owns the configuration
// section, Config.
//
// It does not authenticate clients (broker/clients does, with the keys
// the document names) nor ask for consent.
//
// It imports broker/clients, broker/edge (the text rule), broker/admin
// (the admin scope, which no such client may have), broker/ratelimit (the
// fetches of each client address), broker/safefetch and
// storage, and must not import the broker package nor a connector.
package clientdoc
