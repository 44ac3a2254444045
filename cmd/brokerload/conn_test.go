package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// connServer starts h and counts the connections clients open to it.
func connServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func newTestConn(t *testing.T, srv *httptest.Server, timeout time.Duration) (*conn, *http.Request) {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/n", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(u, timeout)
	t.Cleanup(c.close)
	return c, req
}

// counter answers each request with its number on the server.
func counter() http.HandlerFunc {
	var n atomic.Int64
	return func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, n.Add(1))
	}
}

func TestConn_SendsEveryRequestOnOneConnection(t *testing.T) {
	srv, conns := connServer(t, counter())
	c, req := newTestConn(t, srv, time.Second)
	for i := 1; i <= 5; i++ {
		resp, body, err := c.do(context.Background(), req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if resp.StatusCode != http.StatusOK || string(body) != fmt.Sprint(i) {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("5 requests opened %d connections, want 1", n)
	}
}

func TestConn_DialsAgainAfterConnectionClose(t *testing.T) {
	next := counter()
	srv, conns := connServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		next(w, r)
	})
	c, req := newTestConn(t, srv, time.Second)
	for i := 1; i <= 3; i++ {
		if _, body, err := c.do(context.Background(), req); err != nil || string(body) != fmt.Sprint(i) {
			t.Fatalf("request %d: %q, %v", i, body, err)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("3 answers with Connection: close, then %d connections, want 3", n)
	}
}

// A server may close a keep-alive connection while it is idle; the next
// request must go on a new one, not fail on the closed one.
func TestConn_DialsAgainWhenTheServerClosedTheIdleConnection(t *testing.T) {
	srv, conns := connServer(t, counter())
	c, req := newTestConn(t, srv, time.Second)
	if _, _, err := c.do(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	srv.CloseClientConnections()
	time.Sleep(checkIdleAfter + 50*time.Millisecond)
	if _, body, err := c.do(context.Background(), req); err != nil || string(body) != "2" {
		t.Fatalf("after the server closed the connection: %q, %v", body, err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// waiter answers at once, or, with ?wait, when the client goes away.
func waiter(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("wait") {
		<-r.Context().Done()
		return
	}
	io.WriteString(w, "ok")
}

func TestConn_TimesOutAndRecovers(t *testing.T) {
	srv, _ := connServer(t, waiter)
	c, req := newTestConn(t, srv, 100*time.Millisecond)
	slow, err := http.NewRequest(http.MethodGet, srv.URL+"/?wait", nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err = c.do(context.Background(), slow)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a request the server never answers: err = %v, want a deadline exceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the 100ms timeout took %s", d)
	}
	if _, body, err := c.do(context.Background(), req); err != nil || string(body) != "ok" {
		t.Errorf("the request after a timeout: %q, %v", body, err)
	}
}

func TestConn_CancellingTheContextEndsTheRequest(t *testing.T) {
	srv, _ := connServer(t, waiter)
	c, req := newTestConn(t, srv, time.Minute)
	slow, err := http.NewRequest(http.MethodGet, srv.URL+"/?wait", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := c.do(ctx, slow); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cancelling after 100ms ended the request after %s", d)
	}
	if _, body, err := c.do(context.Background(), req); err != nil || string(body) != "ok" {
		t.Errorf("the request after a cancelled one: %q, %v", body, err)
	}
}

// The measured requests are checked as brokerClient checks the same
// answers.
func TestWorkerClient_RefusesWhatBrokerClientRefuses(t *testing.T) {
	const id, secret = "load client", "s3cret:x"
	var answer atomic.Value // what the server says next
	srv, _ := connServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && (r.Header.Get("Authorization") != basicAuth(id, secret) || r.FormValue("grant_type") == "" && r.FormValue("token") == "") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/token" && r.FormValue("grant_type") == "refresh_token" && r.FormValue("refresh_token") != "rt+/1" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		a := answer.Load().([2]string)
		w.Header().Set("Content-Type", "application/json")
		if a[0] != "200" {
			w.WriteHeader(http.StatusBadRequest)
		}
		io.WriteString(w, a[1])
	})
	u, _ := url.Parse(srv.URL)
	bc := &brokerClient{base: u, auth: basicAuth(id, secret), paths: endpointPaths{
		token: "/token", introspect: "/introspect", jwks: "/jwks", discovery: "/discovery",
	}}
	w, err := bc.newWorkerClient(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	ctx := context.Background()

	for _, tc := range []struct {
		name, status, body, want string
		call                     func() error
	}{
		{"a token", "200", `{"access_token":"at","token_type":"Bearer"}`, "",
			func() error { _, err := w.token(ctx, bc.exchangeForm("st")); return err }},
		{"an OAuth error", "400", `{"error":"invalid_grant","error_description":"no"}`, "POST /token: 400 invalid_grant: no",
			func() error { _, err := w.token(ctx, bc.exchangeForm("st")); return err }},
		{"no access token", "200", `{"token_type":"Bearer"}`, "no access_token",
			func() error { _, err := w.token(ctx, bc.exchangeForm("st")); return err }},
		{"a rotation", "200", `{"access_token":"at","refresh_token":"rt2"}`, "",
			func() error { _, err := w.refresh(ctx, "rt+/1"); return err }},
		{"no rotation", "200", `{"access_token":"at","refresh_token":"rt+/1"}`, "did not rotate",
			func() error { _, err := w.refresh(ctx, "rt+/1"); return err }},
		{"an inactive token", "200", `{"active":false}`, "not active",
			func() error { _, err := w.introspect(ctx, introspectForm("at")); return err }},
		{"an empty JWKS", "200", ``, "empty body",
			func() error { return w.get(ctx, w.jwks) }},
	} {
		answer.Store([2]string{tc.status, tc.body})
		err := tc.call()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	answer.Store([2]string{"200", `{"active":true,"sub":"u1"}`})
	if sub, err := w.introspect(ctx, introspectForm("at")); err != nil || sub != "u1" {
		t.Errorf("introspect = %q, %v; want u1", sub, err)
	}
}
