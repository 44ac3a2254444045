// Package orgs owns the broker's cached view of organisations: each
// organisation by id, slug and upstream organisation id, its verified
// email domains (home realm discovery and SSO enforcement) and the
// connectors stored for it. A Directory loads the view from storage
// once, then polls storage's generation number and reloads when another
// replica (or this one) changed something, so the login and exchange hot
// paths read memory, never the store, and every replica sees a change
// within one poll interval. Those who hold something derived from the
// stored connectors (the connector set) subscribe to each load.
//
// It serves no endpoint and decides nothing about logins: it answers
// lookups. It imports storage alone of the project's packages, and must
// not import the broker, any of its parts, keys nor a connector package
// (imports_test.go holds it to that).
package orgs
