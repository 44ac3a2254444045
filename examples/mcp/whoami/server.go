package whoami

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/idbroker/broker/resource"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// DefaultScope is the scope every request must carry unless Config
// names another.
const DefaultScope = "whoami"

// Config configures the server.
type Config struct {
	// Resource is the MCP endpoint's URL exactly as clients call it, for
	// example https://mcp.example.com/mcp: the resource identifier
	// registered at the broker, the only audience accepted, and the
	// resource its metadata names (an MCP client compares the two,
	// RFC 9728 section 3.3). The server answers at its path. Required.
	Resource string
	// Issuer is the broker's issuer, the one authorization server the
	// metadata names. Required.
	Issuer string
	// Scope is the scope every request must carry. Default DefaultScope.
	Scope string
	// HTTPClient fetches the broker's discovery and key set. Default the
	// resource package's.
	HTTPClient *http.Client
	// ClockSkew is how far past its expiry a token is still accepted.
	// Default the resource package's (resource.DefaultClockSkew).
	ClockSkew time.Duration
	// Logger receives why requests were refused. Nil: not logged.
	Logger *slog.Logger
}

// Identity is what the whoami tool answers: who the token speaks for,
// and what it allows.
type Identity struct {
	Subject  string   `json:"sub" jsonschema:"the platform user's UUID"`
	Email    string   `json:"email,omitempty" jsonschema:"the token's email claim, when it has one"`
	ClientID string   `json:"client_id" jsonschema:"the MCP client the token was issued to"`
	Scopes   []string `json:"scopes" jsonschema:"the token's scopes"`
	Audience []string `json:"aud" jsonschema:"the token's audience: this server"`
}

// New returns the server's handler: the MCP endpoint at Resource's path,
// behind resource.Middleware, and the RFC 9728 metadata at the
// path-inserted well-known URL of Resource. It fetches the broker's
// discovery document first (resource.NewVerifier).
func New(ctx context.Context, cfg Config) (http.Handler, error) {
	if cfg.Scope == "" {
		cfg.Scope = DefaultScope
	}
	endpoint, err := url.Parse(cfg.Resource)
	if err != nil {
		return nil, fmt.Errorf("whoami: resource %q: %w", cfg.Resource, err)
	}
	metadataURL, err := resource.MetadataURL(cfg.Resource)
	if err != nil {
		return nil, err
	}
	metadataPath, _ := url.Parse(metadataURL) // MetadataURL built it
	metadata, err := resource.NewMetadataHandler(resource.Metadata{
		Resource:             cfg.Resource,
		AuthorizationServers: []string{cfg.Issuer},
		ScopesSupported:      []string{cfg.Scope},
		ResourceName:         "whoami (sample MCP server)",
	})
	if err != nil {
		return nil, err
	}
	verifier, err := resource.NewVerifier(ctx, resource.Config{Issuer: cfg.Issuer, Audience: cfg.Resource, HTTPClient: cfg.HTTPClient, ClockSkew: cfg.ClockSkew})
	if err != nil {
		return nil, err
	}
	guard := &resource.Middleware{Verifier: verifier, Scopes: []string{cfg.Scope}, ResourceMetadata: metadataURL, Logger: cfg.Logger}

	server := mcp.NewServer(&mcp.Implementation{Name: "whoami", Version: "1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{
		Name:        "whoami",
		Description: "Says who the caller's access token speaks for: the platform user, the client, the scopes.",
	}, whoami)
	streamable := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{Logger: cfg.Logger})

	path := endpoint.EscapedPath()
	if path == "" {
		path = "/"
	}
	mux := http.NewServeMux()
	mux.Handle(metadataPath.EscapedPath(), metadata)
	mux.Handle(path, guard.Wrap(withTokenInfo(streamable)))
	return mux, nil
}

// withTokenInfo hands the token resource.Middleware verified to the MCP
// SDK as its auth.TokenInfo: the tool reads it from there, and the SDK
// binds each session to the token's user, so a session id taken by
// another user is refused. The SDK's RequireBearerToken only carries it
// over; the verification was the middleware's.
func withTokenInfo(next http.Handler) http.Handler {
	verified := func(ctx context.Context, raw string, _ *http.Request) (*auth.TokenInfo, error) {
		tok, ok := resource.FromContext(ctx)
		if !ok || tok.Raw != raw {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{Scopes: tok.Scopes, Expiration: tok.Expiry, UserID: tok.Subject, Extra: map[string]any{tokenKey: tok}}, nil
	}
	// The middleware accepted the token with its clock skew; the SDK
	// compares the expiry again, and must not refuse what it accepted.
	return auth.RequireBearerToken(verified, &auth.RequireBearerTokenOptions{ClockSkew: resource.MaxClockSkew})(next)
}

// tokenKey is where TokenInfo.Extra holds the *resource.Token.
const tokenKey = "resource.Token"

// whoami is the tool: it answers from the verified token alone.
func whoami(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, Identity, error) {
	var tok *resource.Token
	if info := req.Extra.TokenInfo; info != nil {
		tok, _ = info.Extra[tokenKey].(*resource.Token)
	}
	if tok == nil {
		// Only a request the middleware let through reaches the tool.
		return nil, Identity{}, errors.New("whoami: no verified token")
	}
	return nil, Identity{Subject: tok.Subject, Email: tok.Email, ClientID: tok.ClientID, Scopes: tok.Scopes, Audience: tok.Audience}, nil
}
