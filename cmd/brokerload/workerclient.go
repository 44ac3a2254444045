package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// workerClient sends one worker's requests of the measured phase to the
// token, introspection, JWKS and discovery endpoints, over a connection
// of its own (conn). What every request shares (its URL, Host, Content-Type
// and Authorization) is built once, in requests a POST copies and a GET
// sends as they are; bodies come encoded from the scenario. It checks
// what brokerClient checks of the same answers. A workerClient is used by
// one goroutine at a time.
type workerClient struct {
	conn *conn
	// tokenPost and introspectPost are POSTs without a body.
	tokenPost, introspectPost *http.Request
	jwks, discovery           *http.Request
}

// newWorkerClient returns a workerClient for the endpoints c discovered.
func (c *brokerClient) newWorkerClient(timeout time.Duration) (*workerClient, error) {
	w := &workerClient{conn: newConn(c.base, timeout)}
	for _, r := range []struct {
		dst    **http.Request
		method string
		path   string
	}{
		{&w.tokenPost, http.MethodPost, c.paths.token},
		{&w.introspectPost, http.MethodPost, c.paths.introspect},
		{&w.jwks, http.MethodGet, c.paths.jwks},
		{&w.discovery, http.MethodGet, c.paths.discovery},
	} {
		req, err := http.NewRequest(r.method, c.url(r.path), nil)
		if err != nil {
			return nil, err
		}
		if r.method == http.MethodPost {
			req.Header.Set("Content-Type", formType)
			req.Header.Set("Authorization", c.auth)
		}
		*r.dst = req
	}
	return w, nil
}

// newWorkerClients returns a workerClient for each of n workers.
func (c *brokerClient) newWorkerClients(n int, timeout time.Duration) ([]*workerClient, error) {
	ws := make([]*workerClient, n)
	for i := range ws {
		var err error
		if ws[i], err = c.newWorkerClient(timeout); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

// close closes the worker's connection.
func (w *workerClient) close() { w.conn.close() }

// send sends req and returns the body of its answer, valid until the next
// request, when the status is 200.
func (w *workerClient) send(ctx context.Context, req *http.Request) ([]byte, error) {
	resp, body, err := w.conn.do(ctx, req)
	if err != nil {
		return nil, requestError(req.Method, req.URL.Path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(req.Method, req.URL.Path, resp.StatusCode, body)
	}
	return body, nil
}

// post sends a copy of template with form, encoded, as its body.
func (w *workerClient) post(ctx context.Context, template *http.Request, form string) ([]byte, error) {
	req := *template
	req.Body = io.NopCloser(strings.NewReader(form))
	req.ContentLength = int64(len(form))
	return w.send(ctx, &req)
}

// token posts form, encoded, to the token endpoint.
func (w *workerClient) token(ctx context.Context, form string) (tokenResponse, error) {
	body, err := w.post(ctx, w.tokenPost, form)
	if err != nil {
		return tokenResponse{}, err
	}
	return decodeToken(w.tokenPost.URL.Path, body)
}

// refresh rotates a refresh token.
func (w *workerClient) refresh(ctx context.Context, refreshToken string) (tokenResponse, error) {
	t, err := w.token(ctx, refreshForm(refreshToken))
	if err == nil {
		err = checkRotated(w.tokenPost.URL.Path, refreshToken, t)
	}
	return t, err
}

// introspect posts form (introspectForm) to the introspection endpoint
// and returns the sub of the token, which must be active.
func (w *workerClient) introspect(ctx context.Context, form string) (string, error) {
	body, err := w.post(ctx, w.introspectPost, form)
	if err != nil {
		return "", err
	}
	return decodeIntrospection(w.introspectPost.URL.Path, body)
}

// get sends req, one of w.jwks and w.discovery, whose answer must have a
// body.
func (w *workerClient) get(ctx context.Context, req *http.Request) error {
	body, err := w.send(ctx, req)
	if err == nil && len(body) == 0 {
		err = fmt.Errorf("GET %s: empty body", req.URL.Path)
	}
	return err
}
