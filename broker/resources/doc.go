// Package resources owns the protected resources registered with the
// broker (RFC 8707): those of the configuration file, fixed, then those
// stored at run time, looked up at every request that names one. It holds
// the rules every resource follows wherever it is written (Check) and
// what a request's resource and audience values come to (Registry.Choose):
// a registered resource is asked for alone and makes the access token's
// aud exactly itself, its scope a subset of the resource's and its
// lifetime the resource's; any other value is a client's audience, as
// clients.Client.AudienceFor decides.
//
// It serves no endpoint. Of the project it imports storage, the client
// model and edge (the text rule); never the broker, the token issuer nor the admin package
// (imports_test.go holds it to that).
package resources
