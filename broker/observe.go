package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/idbroker/broker/broker/edge"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type requestIDKey struct{}

// requestID returns the id of the request ctx belongs to, or "".
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// validRequestID accepts an incoming X-Request-Id only if it is short and
// plain, so a client cannot inject text into the logs.
func validRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// RequestLogHandler wraps h so that every record logged with a request's
// context carries its request_id.
func RequestLogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(requestLogHandler); ok {
		return h
	}
	return requestLogHandler{h}
}

type requestLogHandler struct{ slog.Handler }

func (h requestLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := requestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestLogHandler{h.Handler.WithAttrs(as)}
}

func (h requestLogHandler) WithGroup(name string) slog.Handler {
	return requestLogHandler{h.Handler.WithGroup(name)}
}

// metrics are the broker's Prometheus metrics, on a registry of its own
// (no global state: two brokers in one process count separately).
type metrics struct {
	registry        *prometheus.Registry
	requests        *prometheus.CounterVec   // endpoint, code
	latency         *prometheus.HistogramVec // endpoint
	logins          *prometheus.CounterVec   // connector, outcome
	exchanges       *prometheus.CounterVec   // connector, outcome
	otpCodes        *prometheus.CounterVec   // result: sent, failed, limited
	upstreamLatency *prometheus.HistogramVec // host
	upstreamErrors  *prometheus.CounterVec   // host
	storageErrors   *prometheus.CounterVec   // op
	rateLimited     *prometheus.CounterVec   // limit
	bindingRefusals *prometheus.CounterVec   // step, reason
	ssoEnforced     *prometheus.CounterVec   // path: otp, connector, exchange
	consents        *prometheus.CounterVec   // decision: allow, deny, remembered, revoke
}

func newMetrics(keysCreated func() uint64) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "broker_http_requests_total", Help: "HTTP requests by endpoint and status code.",
		}, []string{"endpoint", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "broker_http_request_duration_seconds", Help: "HTTP request latency by endpoint.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"endpoint"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "broker_logins_total", Help: "Completed and failed logins by connector and outcome.",
		}, []string{"connector", "outcome"}),
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "broker_token_exchanges_total", Help: "Token exchanges by connector and outcome.",
		}, []string{"connector", "outcome"}),
		otpCodes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "broker_otp_codes_total", Help: "One-time codes by result: sent, failed (not delivered), limited.",
		}, []string{"result"}),
		upstreamLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "broker_upstream_request_duration_seconds", Help: "Latency of calls to upstream identity providers by host.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"host"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "broker_upstream_errors_total", Help: "Upstream calls that failed or answered 5xx, by host.",
		}, []string{"host"}),
		storageErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "broker_storage_errors_total", Help: "Storage operations that failed, by operation.",
		}, []string{"op"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "broker_rate_limited_total", Help: "Requests refused by an abuse limit, by limit.",
		}, []string{"limit"}),
		bindingRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "broker_login_binding_refusals_total",
			Help: "Sign-in steps refused because the browser is not the one that started the sign-in, by step and reason (no cookie, other browser, unbound).",
		}, []string{"step", "reason"}),
		ssoEnforced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "broker_sso_enforced_total",
			Help: "Sign-ins and exchanges refused because the address's organisation requires its own identity provider, by path (otp, connector, exchange).",
		}, []string{"path"}),
		consents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "broker_consent_decisions_total",
			Help: "Consents to third-party clients by decision: allow, deny, remembered (a remembered consent covered the request), revoke (by the user; an administrator's is audited).",
		}, []string{"decision"}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.logins, m.exchanges, m.otpCodes,
		m.upstreamLatency, m.upstreamErrors, m.storageErrors, m.rateLimited, m.bindingRefusals, m.ssoEnforced, m.consents,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "broker_signing_keys_created_total", Help: "Signing keys this replica created (first keys, rotations, revocations).",
		}, func() float64 { return float64(keysCreated()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// MetricsHandler serves the broker's metrics in the Prometheus format.
func (b *Broker) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(b.metrics.registry, promhttp.HandlerOpts{})
}

// endpointLabel names a request's endpoint for metrics and logs: the path
// of the route pattern the broker's mux (or the admin API's) chose for it,
// so that what a request sends never becomes a label, and the number of
// series stays that of the routes. The library serves everything under
// "/" that the broker does not route itself; its endpoints are named from
// a fixed set, and any other path is "other".
func endpointLabel(pattern, path string) string {
	pattern = edge.RoutePath(pattern)
	if pattern != "/" && pattern != "" {
		return pattern
	}
	switch path {
	case callbackPath, userinfoPath, "/healthz", "/ready":
		return path
	}
	return "other"
}

type routeKey struct{}

// routePattern returns the route pattern recorded for the request ctx
// belongs to, or "" before a mux has chosen one.
func routePattern(ctx context.Context) string {
	if p, ok := ctx.Value(routeKey{}).(*string); ok {
		return *p
	}
	return ""
}

// recordRoute records the pattern mux chooses for a request, for
// observe; it is how the admin API's routes, served by a mux of their
// own, get labels of their own.
func recordRoute(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setRoute(r, mux)
		mux.ServeHTTP(w, r)
	})
}

// setRoute records the pattern mux chooses for r. The pattern of a
// CONNECT redirect is the request's own path, so it is not recorded.
func setRoute(r *http.Request, mux *http.ServeMux) {
	p, ok := r.Context().Value(routeKey{}).(*string)
	if !ok || r.Method == http.MethodConnect {
		return
	}
	_, *p = mux.Handler(r)
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

// observe gives every request an id (kept from X-Request-Id when plain,
// echoed back) and counts it by endpoint (the route routes chooses for
// it) and status.
func (b *Broker) observe(routes *http.ServeMux, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			raw := make([]byte, 12)
			rand.Read(raw)
			id = hex.EncodeToString(raw)
		}
		w.Header().Set("X-Request-Id", id)
		route := new(string)
		ctx := context.WithValue(context.WithValue(r.Context(), requestIDKey{}, id), routeKey{}, route)
		r = r.WithContext(ctx)
		setRoute(r, routes)
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		endpoint := endpointLabel(*route, r.URL.Path)
		b.metrics.requests.WithLabelValues(endpoint, strconv.Itoa(rec.status)).Inc()
		b.metrics.latency.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	})
}

// instrumentedTransport times every call to an upstream and counts
// failures, by host.
type instrumentedTransport struct {
	next    http.RoundTripper
	metrics *metrics
}

func (t instrumentedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	t.metrics.upstreamLatency.WithLabelValues(r.URL.Host).Observe(time.Since(start).Seconds())
	if err != nil || resp.StatusCode >= 500 {
		t.metrics.upstreamErrors.WithLabelValues(r.URL.Host).Inc()
	}
	return resp, err
}

// instrumentClient returns a copy of c whose calls are measured.
func (m *metrics) instrumentClient(c *http.Client) *http.Client {
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	out := *c
	out.Transport = instrumentedTransport{next: next, metrics: m}
	return &out
}
