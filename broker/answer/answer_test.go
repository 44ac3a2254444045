package answer_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// failures is a Failures whose log and counter the test reads.
type failures struct {
	answer.Failures
	logs     *bytes.Buffer
	registry *prometheus.Registry
}

func newFailures(t *testing.T) failures {
	t.Helper()
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	counter := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "storage_errors_total", Help: "test"}, []string{"op"})
	registry := prometheus.NewRegistry()
	registry.MustRegister(counter)
	renderer, err := web.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	pages := answer.ErrorPages{Renderer: renderer, Branding: web.Branding{ProductName: "Acme"}, Log: log}
	return failures{answer.Failures{Log: log, StorageErrors: counter, Pages: pages}, logs, registry}
}

// counted returns the storage errors counted, by operation.
func (f failures) counted(t *testing.T) map[string]float64 {
	t.Helper()
	families, err := f.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, family := range families {
		for _, m := range family.GetMetric() {
			out[m.GetLabel()[0].GetValue()] += m.GetCounter().GetValue()
		}
	}
	return out
}

// logged reports whether a line at level with msg, op and the cause was
// logged.
func (f failures) logged(level, msg, what string, cause error) bool {
	for line := range strings.SplitSeq(f.logs.String(), "\n") {
		if strings.Contains(line, "level="+level) && strings.Contains(line, fmt.Sprintf("msg=%q", msg)) &&
			strings.Contains(line, fmt.Sprintf("op=%q", what)) && strings.Contains(line, cause.Error()) {
			return true
		}
	}
	return false
}

// wantStoreFailure checks that the cause was logged at ERROR as a store
// failure of what and counted once, and nothing else counted.
func (f failures) wantStoreFailure(t *testing.T, what string, cause error) {
	t.Helper()
	if !f.logged("ERROR", "storage failed", what, cause) {
		t.Errorf("no ERROR line with the cause in:\n%s", f.logs)
	}
	if got := f.counted(t); len(got) != 1 || got[what] != 1 {
		t.Errorf("counted %v, want %s once", got, what)
	}
}

// wantRequestRefused checks that the cause was logged at INFO as the
// request's fault, nothing at ERROR, and nothing counted.
func (f failures) wantRequestRefused(t *testing.T, what string, cause error) {
	t.Helper()
	if !f.logged("INFO", "request refused by storage", what, cause) {
		t.Errorf("no INFO line in:\n%s", f.logs)
	}
	if strings.Contains(f.logs.String(), "level=ERROR") {
		t.Errorf("logged at ERROR:\n%s", f.logs)
	}
	if got := f.counted(t); len(got) != 0 {
		t.Errorf("counted %v, want nothing", got)
	}
}

type oauthBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func decode(t *testing.T, rec *httptest.ResponseRecorder) (oauthBody, map[string]any) {
	t.Helper()
	var body oauthBody
	var raw map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	json.Unmarshal(rec.Body.Bytes(), &raw)
	return body, raw
}

func TestOAuthError_WritesJSONWithStatusAndKeepsTheCallersHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("Cache-Control", "no-store")
	answer.OAuthError(rec, http.StatusBadRequest, "invalid_request", "the form could not be read")

	if rec.Code != http.StatusBadRequest {
		t.Errorf("status %d, want 400", rec.Code)
	}
	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q, want application/json", got)
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want the caller's no-store", got)
	}
	body, _ := decode(t, rec)
	if body != (oauthBody{"invalid_request", "the form could not be read"}) {
		t.Errorf("body %+v", body)
	}
}

func TestOAuthError_WithoutDescriptionOmitsIt(t *testing.T) {
	rec := httptest.NewRecorder()
	answer.OAuthError(rec, http.StatusUnauthorized, "invalid_token", "")
	if _, raw := decode(t, rec); len(raw) != 1 || raw["error"] != "invalid_token" {
		t.Errorf("body %s, want only the error", rec.Body)
	}
	if rec.Header().Get("Cache-Control") != "" {
		t.Errorf("Cache-Control %q set without the caller asking", rec.Header().Get("Cache-Control"))
	}
}

// statusError is what the OpenID Connect library answers for err.
func statusError(t *testing.T, err error) (int, *oidc.Error) {
	t.Helper()
	var oe *oidc.Error
	if !errors.As(err, &oe) {
		t.Fatalf("%v carries no oidc.Error", err)
	}
	rec := httptest.NewRecorder()
	op.WriteError(rec, httptest.NewRequest("POST", "/token", nil), err, nil)
	if body, _ := decode(t, rec); body.Error != string(oe.ErrorType) {
		t.Errorf("the library answers %q for %v", body.Error, err)
	}
	return rec.Code, oe
}

func TestStore_StoreDownIs503LoggedAtErrorAndCountedOnce(t *testing.T) {
	f := newFailures(t)
	cause := errors.New("dial tcp: connection refused")
	status, oe := statusError(t, f.Store(t.Context(), "get client", cause))

	if status != http.StatusServiceUnavailable || oe.ErrorType != "temporarily_unavailable" {
		t.Errorf("answer %d %s, want 503 temporarily_unavailable", status, oe.ErrorType)
	}
	if strings.Contains(oe.Description, "refused") {
		t.Errorf("description %q shows the cause to the client", oe.Description)
	}
	f.wantStoreFailure(t, "get client", cause)
}

func TestStore_InvalidTextIs400AtInfoAndNotCounted(t *testing.T) {
	f := newFailures(t)
	cause := fmt.Errorf("put user: %w", storage.ErrInvalidText)
	status, oe := statusError(t, f.Store(t.Context(), "resolve identity", cause))

	if status != http.StatusBadRequest || oe.ErrorType != oidc.InvalidRequest {
		t.Errorf("answer %d %s, want 400 invalid_request", status, oe.ErrorType)
	}
	if want := answer.InvalidTextReason("the request"); oe.Description != want {
		t.Errorf("description %q, want %q", oe.Description, want)
	}
	f.wantRequestRefused(t, "resolve identity", cause)
}

func TestWriteStore_Answers503TemporarilyUnavailableInJSON(t *testing.T) {
	f := newFailures(t)
	cause := errors.New("timeout")
	rec := httptest.NewRecorder()
	f.WriteStore(t.Context(), rec, "check access token", cause)

	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("answer %d %q, want 503 JSON", rec.Code, rec.Header().Get("Content-Type"))
	}
	if body, _ := decode(t, rec); body != (oauthBody{"temporarily_unavailable", "the service is temporarily unavailable; try again shortly"}) {
		t.Errorf("body %+v", body)
	}
	f.wantStoreFailure(t, "check access token", cause)
}

func TestWriteStore_InvalidTextIs400NotCounted(t *testing.T) {
	f := newFailures(t)
	cause := fmt.Errorf("get client: %w", storage.ErrInvalidText)
	rec := httptest.NewRecorder()
	f.WriteStore(t.Context(), rec, "get client", cause)

	if rec.Code != http.StatusBadRequest {
		t.Errorf("answer %d, want 400", rec.Code)
	}
	if body, _ := decode(t, rec); body != (oauthBody{"invalid_request", answer.InvalidTextReason("the request")}) {
		t.Errorf("body %+v", body)
	}
	f.wantRequestRefused(t, "get client", cause)
}

func TestTemporarilyUnavailable_Is503(t *testing.T) {
	status, oe := statusError(t, answer.TemporarilyUnavailable())
	if status != http.StatusServiceUnavailable || oe.ErrorType != "temporarily_unavailable" {
		t.Errorf("answer %d %s, want 503 temporarily_unavailable", status, oe.ErrorType)
	}
}

func TestStorePage_StoreDownIsThe503PageLoggedAndCounted(t *testing.T) {
	f := newFailures(t)
	cause := errors.New("connection reset")
	rec := httptest.NewRecorder()
	f.StorePage(rec, httptest.NewRequest("GET", "/login", nil), "get auth request", cause)

	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", rec.Code)
	}
	if !strings.Contains(rec.Body.String(), "Temporarily unavailable") || !strings.Contains(rec.Header().Get("Content-Type"), "text/html") {
		t.Errorf("not the unavailable page: %q\n%s", rec.Header().Get("Content-Type"), rec.Body)
	}
	if strings.Contains(rec.Body.String(), "connection reset") {
		t.Error("the page shows the cause")
	}
	f.wantStoreFailure(t, "get auth request", cause)
}

func TestStorePage_InvalidTextIsA400PageAtInfoAndNotCounted(t *testing.T) {
	f := newFailures(t)
	cause := fmt.Errorf("update auth request: %w", storage.ErrInvalidText)
	rec := httptest.NewRecorder()
	f.StorePage(rec, httptest.NewRequest("POST", "/login", nil), "update auth request", cause)

	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "Request not valid") {
		t.Errorf("answer %d, want the 400 page:\n%s", rec.Code, rec.Body)
	}
	f.wantRequestRefused(t, "update auth request", cause)
}

func TestErrorPages_RenderHasTheStatusTitleAndMessage(t *testing.T) {
	f := newFailures(t)
	rec := httptest.NewRecorder()
	f.Pages.Render(rec, httptest.NewRequest("GET", "/authorize/callback", nil), http.StatusNotFound,
		"This sign-in has expired", "Go back to the application.")

	if rec.Code != http.StatusNotFound {
		t.Errorf("status %d, want 404", rec.Code)
	}
	page := rec.Body.String()
	for _, want := range []string{"<title>", "This sign-in has expired", "Go back to the application.", "Acme"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
}
