package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/broker/admin"
)

// listFlag collects a flag given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// clientFlags are the settings of a client, as create and update take them.
type clientFlags struct {
	name, jwksURI, jwksFile, backchannel, idTokenAlg               *string
	public, thirdParty                                             *bool
	grants, audiences, scopes, redirects, logouts, origins, actors listFlag
	idJAGAudiences                                                 listFlag
}

func newClientFlags(fs *flag.FlagSet) *clientFlags {
	c := &clientFlags{
		name:        fs.String("name", "", "display name"),
		jwksURI:     fs.String("jwks-uri", "", "URL of the client's JWKS, for private_key_jwt"),
		jwksFile:    fs.String("jwks", "", "file holding the client's JWKS (JSON), for private_key_jwt"),
		public:      fs.Bool("public", false, "create: a public client (PKCE, no secret)"),
		thirdParty:  fs.Bool("third-party", false, "a client the platform does not run: its users consent to it, and it gets only resources that accept third parties"),
		backchannel: fs.String("backchannel-logout-uri", "", "where the client receives back-channel logout tokens"),
		idTokenAlg:  fs.String("id-token-alg", "", "algorithm of the client's ID tokens (id_token_signed_response_alg): one the broker signs ID tokens with"),
	}
	fs.Var(&c.grants, "grant", "grant type (repeatable): authorization_code, refresh_token, token-exchange, client_credentials, "+broker.GrantJWTBearer)
	fs.Var(&c.audiences, "audience", "audience the client may ask for (repeatable; the first is the default)")
	fs.Var(&c.scopes, "scope", "scope the client may ask for (repeatable)")
	fs.Var(&c.redirects, "redirect-uri", "redirect URI (repeatable)")
	fs.Var(&c.logouts, "post-logout-redirect-uri", "post-logout redirect URI (repeatable)")
	fs.Var(&c.origins, "origin", "allowed CORS origin (repeatable)")
	fs.Var(&c.actors, "actor", "who may act in the client's token exchanges (repeatable): client:<client id> or user:<UUID>")
	fs.Var(&c.idJAGAudiences, "id-jag-audience", "issuer of an authorization server the client may get identity assertion grants (ID-JAGs) for by token exchange (repeatable)")
	return c
}

func (c *clientFlags) jwks() (json.RawMessage, error) {
	if *c.jwksFile == "" {
		return nil, nil
	}
	data, err := os.ReadFile(*c.jwksFile)
	if err != nil {
		return nil, fmt.Errorf("--jwks: %w", err)
	}
	return data, nil
}

func clientsCommand(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	const usage = "usage: broker clients create|list|show|update|delete|rotate-secret --config FILE [flags] [CLIENT_ID]"
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmd := args[0]
	f := newAdminFlags("clients "+cmd, stderr)
	var cf *clientFlags
	if cmd == "create" || cmd == "update" {
		cf = newClientFlags(f.fs)
	}
	grace := f.fs.Duration("grace", 0, "rotate-secret: how long the old secret stays valid (e.g. 24h)")
	if err := f.fs.Parse(args[1:]); err != nil {
		return err
	}
	wantArgs := 1
	if cmd == "list" {
		wantArgs = 0
	}
	if f.fs.NArg() != wantArgs {
		return errors.New(usage)
	}
	cfg, store, err := openConfigured(ctx, *f.config, env)
	if err != nil {
		return err
	}
	defer store.Close()
	adm := broker.NewAdmin(cfg, store, nil)
	id := f.fs.Arg(0)
	switch cmd {
	case "create":
		jwks, err := cf.jwks()
		if err != nil {
			return err
		}
		info, secret, err := adm.CreateClient(ctx, admin.ActorCLI, admin.ClientSpec{
			ID: id, Name: *cf.name, Public: *cf.public, RedirectURIs: cf.redirects, PostLogoutRedirectURIs: cf.logouts,
			GrantTypes: cf.grants, Audiences: cf.audiences, Scopes: cf.scopes, AllowedOrigins: cf.origins,
			JWKSURI: *cf.jwksURI, JWKS: jwks, BackchannelLogoutURI: *cf.backchannel,
			IDTokenSignedResponseAlg: *cf.idTokenAlg, Actors: cf.actors, ThirdParty: *cf.thirdParty, IDJAGAudiences: cf.idJAGAudiences,
		})
		if err != nil {
			return err
		}
		printClient(stdout, info)
		if secret != "" {
			fmt.Fprintf(stdout, "\nclient_secret: %s\nThe secret is shown this once; only its hash is stored.\n", secret)
		}
		return nil
	case "list":
		list, err := adm.ListClients(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT_ID\tNAME\tPUBLIC\tGRANTS\tAUDIENCES\tTHIRD PARTY\tREGISTERED")
		for _, c := range list {
			fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%s\t%t\t%t\n", c.ID, c.Name, c.Public, strings.Join(c.GrantTypes, ","), strings.Join(c.Audiences, ","),
				c.ThirdParty, c.Registered)
		}
		fmt.Fprintf(tw, "(%d stored clients; clients of the configuration file are not listed)\n", len(list))
		return tw.Flush()
	case "show":
		info, err := adm.GetClient(ctx, id)
		if err != nil {
			return err
		}
		printClient(stdout, info)
		return nil
	case "update":
		var u admin.ClientUpdate
		jwks, err := cf.jwks()
		if err != nil {
			return err
		}
		// Only the flags given change anything; a list flag replaces
		// the whole list.
		f.fs.Visit(func(fl *flag.Flag) {
			switch fl.Name {
			case "name":
				u.Name = cf.name
			case "jwks-uri":
				u.JWKSURI = cf.jwksURI
			case "jwks":
				u.JWKS = &jwks
			case "grant":
				u.GrantTypes = (*[]string)(&cf.grants)
			case "audience":
				u.Audiences = (*[]string)(&cf.audiences)
			case "scope":
				u.Scopes = (*[]string)(&cf.scopes)
			case "redirect-uri":
				u.RedirectURIs = (*[]string)(&cf.redirects)
			case "post-logout-redirect-uri":
				u.PostLogoutRedirectURIs = (*[]string)(&cf.logouts)
			case "origin":
				u.AllowedOrigins = (*[]string)(&cf.origins)
			case "actor":
				u.Actors = (*[]string)(&cf.actors)
			case "id-jag-audience":
				u.IDJAGAudiences = (*[]string)(&cf.idJAGAudiences)
			case "backchannel-logout-uri":
				u.BackchannelLogoutURI = cf.backchannel
			case "id-token-alg":
				u.IDTokenSignedResponseAlg = cf.idTokenAlg
			case "third-party":
				u.ThirdParty = cf.thirdParty
			case "public":
				err = errors.New("--public cannot be changed; create a new client")
			}
		})
		if err != nil {
			return err
		}
		info, err := adm.UpdateClient(ctx, admin.ActorCLI, id, u)
		if err != nil {
			return err
		}
		printClient(stdout, info)
		return nil
	case "delete":
		if err := adm.DeleteClient(ctx, admin.ActorCLI, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "client %s deleted\n", id)
		return nil
	case "rotate-secret":
		secret, info, err := adm.RotateClientSecret(ctx, admin.ActorCLI, id, *grace)
		if err != nil {
			return err
		}
		printClient(stdout, info)
		fmt.Fprintf(stdout, "\nclient_secret: %s\nThe secret is shown this once; the previous ones stay valid for %v.\n", secret, *grace)
		return nil
	default:
		return fmt.Errorf("unknown clients command %q (want create, list, show, update, delete or rotate-secret)", cmd)
	}
}

func printClient(w io.Writer, c admin.ClientInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	row("client_id", c.ID)
	row("name", c.Name)
	row("public", c.Public)
	row("grant_types", strings.Join(c.GrantTypes, " "))
	row("audiences", strings.Join(c.Audiences, " "))
	row("scopes", strings.Join(c.Scopes, " "))
	row("redirect_uris", strings.Join(c.RedirectURIs, " "))
	// Settings most clients leave empty are shown only when set.
	opt := func(k string, v ...string) {
		if v := strings.Join(v, " "); v != "" {
			row(k, v)
		}
	}
	opt("post_logout_redirect_uris", c.PostLogoutRedirectURIs...)
	opt("allowed_origins", c.AllowedOrigins...)
	opt("backchannel_logout_uri", c.BackchannelLogoutURI)
	opt("id_token_signed_response_alg", c.IDTokenSignedResponseAlg)
	opt("actors", c.Actors...)
	opt("id_jag_audiences", c.IDJAGAudiences...)
	if c.Introspector {
		row("introspector", true)
	}
	row("third_party", c.ThirdParty)
	if c.Registered {
		row("registered", "through /register (RFC 7591)")
	}
	if c.LastUsedAt != nil {
		row("last_used", c.LastUsedAt.Format(time.RFC3339))
	}
	if c.JWKSURI != "" {
		row("jwks_uri", c.JWKSURI)
	}
	if len(c.JWKS) > 0 {
		row("jwks", "(inline)")
	}
	row("service_user_id", c.ServiceUserID)
	for i, s := range c.Secrets {
		exp := "never expires"
		if s.ExpiresAt != nil {
			exp = "expires " + s.ExpiresAt.Format(time.RFC3339)
		}
		row(fmt.Sprintf("secret %d", i+1), exp)
	}
	row("created", c.CreatedAt.Format(time.RFC3339))
	tw.Flush()
}
