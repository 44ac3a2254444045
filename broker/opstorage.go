package broker

import (
	"context"
	"errors"
	"net/http"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/keys"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Health reports that the process is serving.
func (b *Broker) Health(context.Context, *op.Request[struct{}]) (*op.Response, error) {
	return op.NewResponse(op.Status{Status: "ok"}), nil
}

// Ready reports whether the broker can serve logins (the library's /ready).
func (b *Broker) Ready(ctx context.Context, _ *op.Request[struct{}]) (*op.Response, error) {
	if err := b.ready(ctx); err != nil {
		return nil, answer.TemporarilyUnavailable()
	}
	return op.NewResponse(op.Status{Status: "ok"}), nil
}

// readyz is the readiness probe load balancers and Kubernetes use.
func (b *Broker) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := b.ready(r.Context()); err != nil {
		answer.OAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// ready checks what serving needs: storage answers and a key signs.
func (b *Broker) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := b.store.Ping(ctx); err != nil {
		b.log.WarnContext(ctx, "not ready: storage unreachable", "err", err)
		return errors.New("storage unreachable")
	}
	if err := b.upstreams.NotReady(ctx, b.log); err != nil {
		return err
	}
	for _, use := range []keys.Use{keys.UseIDToken, keys.UseAccessToken} {
		if _, err := b.keys.Signer(use, ""); err != nil {
			b.log.WarnContext(ctx, "not ready: no signing key", "use", use, "err", err)
			return errors.New("no signing key")
		}
	}
	return nil
}

// opStorage is the op.Storage the library's Provider requires. The broker
// overrides every Server method that would reach the library's token and
// auth-request storage, so those methods here refuse: if a future library
// version routes a request to one of them, it fails closed instead of
// issuing anything.
type opStorage struct{ b *Broker }

var errHandledByBroker = errors.New("broker: handled by the broker's own Server methods")

func (s *opStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.b.clients.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (s *opStorage) Health(ctx context.Context) error { return s.b.store.Ping(ctx) }

func (s *opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	var algs []jose.SignatureAlgorithm
	for _, a := range s.b.keys.Algorithms(keys.UseIDToken) {
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	return algs, nil
}

func (s *opStorage) CreateAuthRequest(context.Context, *oidc.AuthRequest, string) (op.AuthRequest, error) {
	return nil, errHandledByBroker
}
func (s *opStorage) AuthRequestByID(context.Context, string) (op.AuthRequest, error) {
	return nil, errHandledByBroker
}
func (s *opStorage) AuthRequestByCode(context.Context, string) (op.AuthRequest, error) {
	return nil, errHandledByBroker
}
func (s *opStorage) SaveAuthCode(context.Context, string, string) error { return errHandledByBroker }
func (s *opStorage) DeleteAuthRequest(context.Context, string) error    { return errHandledByBroker }
func (s *opStorage) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return "", time.Time{}, errHandledByBroker
}
func (s *opStorage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errHandledByBroker
}
func (s *opStorage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, errHandledByBroker
}
func (s *opStorage) TerminateSession(context.Context, string, string) error {
	return errHandledByBroker
}
func (s *opStorage) RevokeToken(context.Context, string, string, string) *oidc.Error {
	return oidc.ErrServerError().WithParent(errHandledByBroker)
}
func (s *opStorage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}
func (s *opStorage) SigningKey(context.Context) (op.SigningKey, error) {
	return nil, errHandledByBroker
}
func (s *opStorage) KeySet(context.Context) ([]op.Key, error) { return nil, errHandledByBroker }
func (s *opStorage) AuthorizeClientIDSecret(context.Context, string, string) error {
	return errHandledByBroker
}
func (s *opStorage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return errHandledByBroker
}
func (s *opStorage) SetUserinfoFromToken(context.Context, *oidc.UserInfo, string, string, string) error {
	return errHandledByBroker
}
func (s *opStorage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errHandledByBroker
}
func (s *opStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, errHandledByBroker
}
func (s *opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errHandledByBroker
}
func (s *opStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errHandledByBroker
}
