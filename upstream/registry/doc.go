// Package registry is the one place that knows every connector type: it
// maps a type name ("oidc", "auth0", "azuread", "workos", "otp",
// "legacy") to that connector package's typed upstream.Config, and decodes
// a connector's own settings into it, strictly, from YAML (the broker's
// configuration file) or JSON (storage).
//
// It owns the type names and the decoding rules: a setting the type does
// not take is an error that names it, and says which types take it when
// it belongs to another. It does not own the settings every connector has
// (id, type, name, domains, timeout, recheckInterval), which are the
// broker's, nor any rule about them.
//
// It imports upstream and the connector packages, and must not import the
// broker or storage. No connector package imports it.
package registry
