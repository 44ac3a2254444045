package resource_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/idbroker/broker/resource"
)

// A service that accepts the broker's tokens for its own audience,
// publishes its RFC 9728 metadata, and requires a scope.
func ExampleMiddleware() {
	ctx := context.Background()
	const (
		issuer   = "https://auth.example.com" // the broker
		audience = "https://api.example.com"  // this service, as clients name it to the broker
	)
	verifier, err := resource.NewVerifier(ctx, resource.Config{Issuer: issuer, Audience: audience})
	if err != nil {
		log.Fatal(err)
	}
	metadataURL, err := resource.MetadataURL(audience)
	if err != nil {
		log.Fatal(err)
	}
	metadata, err := resource.NewMetadataHandler(resource.Metadata{
		Resource:             audience,
		AuthorizationServers: []string{issuer},
		ScopesSupported:      []string{"invoices.read"},
	})
	if err != nil {
		log.Fatal(err)
	}
	guard := &resource.Middleware{Verifier: verifier, ResourceMetadata: metadataURL, Scopes: []string{"invoices.read"}}

	mux := http.NewServeMux()
	mux.Handle("GET /.well-known/oauth-protected-resource", metadata)
	mux.Handle("GET /invoices", guard.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := resource.FromContext(r.Context())
		fmt.Fprintf(w, "invoices of user %s, asked by client %s\n", tok.Subject, tok.ClientID)
	})))
	log.Fatal(http.ListenAndServe(":8081", mux))
}
