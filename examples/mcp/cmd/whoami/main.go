// Command whoami runs the sample MCP server of examples/mcp/whoami.
//
//	whoami -issuer https://auth.example.com -resource https://mcp.example.com/mcp -addr :8443 -tls-cert cert.pem -tls-key key.pem
//
// Register the resource at the broker first (its configuration's
// resources, or `broker resources create`), with the scope the server
// requires (default whoami) and thirdParty: true for clients that
// register themselves. Without -tls-cert it serves plain HTTP, for a
// proxy that terminates TLS at the resource's https URL.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/idbroker/broker/examples/mcp/whoami"
)

func main() {
	issuer := flag.String("issuer", "", "the broker's issuer URL")
	res := flag.String("resource", "", "this server's MCP endpoint URL, as registered at the broker")
	scope := flag.String("scope", whoami.DefaultScope, "the scope every request must carry")
	addr := flag.String("addr", ":8080", "where to listen")
	cert := flag.String("tls-cert", "", "TLS certificate file (PEM)")
	key := flag.String("tls-key", "", "TLS key file (PEM)")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	h, err := whoami.New(ctx, whoami.Config{Resource: *res, Issuer: *issuer, Scope: *scope, Logger: logger})
	cancel()
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("whoami: serving", "addr", *addr, "resource", *res, "issuer", *issuer)
	if *cert != "" {
		log.Fatal(srv.ListenAndServeTLS(*cert, *key))
	}
	log.Fatal(srv.ListenAndServe())
}
