package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// conn is one worker's keep-alive HTTP/1.1 connection to the broker: it
// writes each request with (*http.Request).Write and reads the answer with
// http.ReadResponse, on the worker's own goroutine. An http.Transport runs
// two goroutines per connection and hands every request and response
// between them over channels; the tool shares the broker's cores, and in
// the measured phase that scheduling was CPU taken from the broker.
//
// A conn dials when it has no connection, and drops its connection after
// any failure, when the server answers "Connection: close", and when the
// server closed it while it was idle (see checkIdleAfter). It never
// retries a request: a request that failed counts as a failure. A conn is
// used by one goroutine at a time.
type conn struct {
	addr    string // host:port of the broker
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	timeout time.Duration // of one request: dialling, or writing it and reading its answer

	nc   net.Conn        // nil before the first request and after a failure
	raw  syscall.RawConn // nc's socket, to see whether the server closed it; nil if not a socket
	idle time.Time       // when nc's last answer was read
	br   *bufio.Reader
	bw   *bufio.Writer
	body bytes.Buffer // the last answer's body
}

// checkIdleAfter is how long a connection can have been idle before a
// request is sent on it without first checking that the server has not
// closed it (peerClosed). Servers close idle connections after seconds
// (the broker after two minutes), and the check is a system call that a
// worker sending back to back would make on every request for nothing.
const checkIdleAfter = 100 * time.Millisecond

// newConn returns a conn to base's host, which dials only loopback
// addresses. It dials on its first request.
func newConn(base *url.URL, timeout time.Duration) *conn {
	c := &conn{addr: base.Host, timeout: timeout}
	d := loopbackDialer()
	c.dial = d.DialContext
	port := "80"
	if base.Scheme == "https" {
		port = "443"
		// HTTP/1.1 only: no ALPN, so the server does not pick HTTP/2.
		td := &tls.Dialer{NetDialer: d, Config: &tls.Config{ServerName: base.Hostname()}}
		c.dial = td.DialContext
	}
	if base.Port() == "" {
		c.addr = net.JoinHostPort(base.Hostname(), port)
	}
	return c
}

// do sends req and reads the answer. The returned body is valid until the
// next call. Cancelling ctx ends the request at once, as with an
// http.Client.
func (c *conn) do(ctx context.Context, req *http.Request) (*http.Response, []byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	now := time.Now()
	if c.nc != nil && c.raw != nil && now.Sub(c.idle) > checkIdleAfter && peerClosed(c.raw) {
		c.close()
	}
	if c.nc == nil {
		if err := c.connect(ctx); err != nil {
			return nil, nil, err
		}
	}
	nc := c.nc
	nc.SetDeadline(now.Add(c.timeout))
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	resp, body, err := c.roundTrip(req)
	if !stop() {
		// The deadline in the past may have ended this request, and would
		// end the next one.
		c.close()
		if err != nil {
			err = ctx.Err()
		}
	}
	return resp, body, err
}

func (c *conn) roundTrip(req *http.Request) (*http.Response, []byte, error) {
	err := req.Write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		c.close()
		return nil, nil, err
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		c.close()
		return nil, nil, err
	}
	// The body is read to its end, or the connection closed: either way
	// it needs no Close, which would read whatever is past maxResponse.
	c.body.Reset()
	if _, err := c.body.ReadFrom(io.LimitReader(resp.Body, maxResponse)); err != nil {
		c.close()
		return nil, nil, err
	}
	if resp.Close || c.body.Len() == maxResponse {
		c.close()
	}
	c.idle = time.Now()
	return resp, c.body.Bytes(), nil
}

func (c *conn) connect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	nc, err := c.dial(ctx, "tcp", c.addr)
	if err != nil {
		return err
	}
	c.nc, c.raw = nc, nil
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if sc, ok := nc.(syscall.Conn); ok {
		if c.raw, err = sc.SyscallConn(); err != nil {
			c.close()
			return err
		}
	}
	if c.br == nil {
		c.br, c.bw = bufio.NewReader(c.nc), bufio.NewWriter(c.nc)
	} else {
		c.br.Reset(c.nc)
		c.bw.Reset(c.nc)
	}
	return nil
}

// close drops the connection; the next request dials a new one.
func (c *conn) close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc, c.raw = nil, nil
	}
}
