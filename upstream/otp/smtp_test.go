package otp_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/idbroker/broker/upstream/otp"
)

// sink is an in-process SMTP server that keeps every message it accepts.
type sink struct {
	addr     string
	username string // when set, AUTH PLAIN with password is required
	password string
	delay    time.Duration // before answering MAIL and RCPT

	mu       sync.Mutex // guards received
	received []received
}

type received struct {
	from, to string
	tls      bool
	data     []byte
}

type sinkTLS int

const (
	plainSink sinkTLS = iota
	startTLSSink
	implicitTLSSink
)

// startSink serves SMTP on 127.0.0.1 until the test ends. It returns the
// sink and a client TLS config that trusts its self-signed certificate.
func startSink(t *testing.T, mode sinkTLS, username, password string) (*sink, *tls.Config) {
	t.Helper()
	serverTLS, clientTLS := selfSigned(t)
	s := &sink{username: username, password: password}
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	srv.ReadTimeout = 5 * time.Second
	srv.WriteTimeout = 5 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	switch mode {
	case startTLSSink:
		srv.TLSConfig = serverTLS
	case implicitTLSSink:
		srv.TLSConfig = serverTLS
		l = tls.NewListener(l, serverTLS)
	}
	s.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s, clientTLS
}

func (s *sink) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.received...)
}

func (s *sink) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{sink: s, tls: isTLS, authed: s.username == ""}, nil
}

type session struct {
	sink     *sink
	tls      bool
	authed   bool
	from, to string
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != s.sink.username || password != s.sink.password {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	time.Sleep(s.sink.delay)
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	time.Sleep(s.sink.delay)
	s.to = to
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.sink.mu.Lock()
	defer s.sink.mu.Unlock()
	s.sink.received = append(s.sink.received, received{from: s.from, to: s.to, tls: s.tls, data: b})
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", "" }
func (s *session) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and localhost.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test smtp sink"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}

func newMailer(t *testing.T, cfg otp.SMTPConfig) *otp.SMTPMailer {
	t.Helper()
	m, err := otp.NewSMTPMailer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// parsed is a received message as a mail reader would show it.
type parsed struct {
	header mail.Header
	parts  map[string]string // media type → decoded body
}

func parse(t *testing.T, data []byte) parsed {
	t.Helper()
	if i := bytes.IndexByte(bytes.ReplaceAll(data, []byte("\r\n"), nil), '\n'); i >= 0 {
		t.Errorf("message has a bare LF: %q", data)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	p := parsed{header: msg.Header, parts: map[string]string{}}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pt, _, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(part) // multipart decodes quoted-printable
		if err != nil {
			t.Fatal(err)
		}
		p.parts[pt] = string(b)
	}
	return p
}

func (p parsed) subject(t *testing.T) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(p.header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

func TestSMTPMailer_STARTTLSWithAuthDeliversCodeInBothParts(t *testing.T) {
	s, clientTLS := startSink(t, startTLSSink, "mailer", "s3cret")
	m := newMailer(t, otp.SMTPConfig{
		Addr: s.addr, From: "login@broker.example", Username: "mailer", Password: "s3cret",
		TLSConfig: clientTLS, HeloName: "broker.example",
	})
	if err := m.SendCode(t.Context(), otp.Message{To: "alice@example.com", Code: "042917", Product: "Acme"}); err != nil {
		t.Fatal(err)
	}
	got := s.messages()
	if len(got) != 1 {
		t.Fatalf("sink received %d messages, want 1", len(got))
	}
	r := got[0]
	if !r.tls || r.from != "login@broker.example" || r.to != "alice@example.com" {
		t.Errorf("envelope from %q to %q, tls %v", r.from, r.to, r.tls)
	}
	p := parse(t, r.data)
	if sub := p.subject(t); sub != "Your Acme sign-in code: 042917" {
		t.Errorf("Subject = %q", sub)
	}
	for _, h := range []string{"From", "To", "Date", "Message-ID", "MIME-Version"} {
		if p.header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	if to, err := p.header.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != "alice@example.com" {
		t.Errorf("To = %v, %v", to, err)
	}
	if _, err := p.header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	for _, typ := range []string{"text/plain", "text/html"} {
		body, ok := p.parts[typ]
		if !ok {
			t.Errorf("no %s part", typ)
			continue
		}
		if code := sixDigits.FindString(body); code != "042917" {
			t.Errorf("%s part: code %q, want 042917 in:\n%s", typ, code, body)
		}
	}
}

func TestSMTPMailer_ImplicitTLSDelivers(t *testing.T) {
	s, clientTLS := startSink(t, implicitTLSSink, "mailer", "s3cret")
	m := newMailer(t, otp.SMTPConfig{
		Addr: s.addr, From: "login@broker.example", Username: "mailer", Password: "s3cret",
		TLS: "implicit", TLSConfig: clientTLS,
	})
	if err := m.SendCode(t.Context(), otp.Message{To: "bob@example.com", Code: "123456", Product: "Acme"}); err != nil {
		t.Fatal(err)
	}
	got := s.messages()
	if len(got) != 1 || !got[0].tls {
		t.Fatalf("sink received %+v, want one message over TLS", got)
	}
	if code := sixDigits.FindString(parse(t, got[0].data).parts["text/plain"]); code != "123456" {
		t.Errorf("code %q, want 123456", code)
	}
}

func TestSMTPMailer_RefusesServerWithoutSTARTTLS(t *testing.T) {
	s, clientTLS := startSink(t, plainSink, "", "")
	m := newMailer(t, otp.SMTPConfig{Addr: s.addr, From: "login@broker.example", TLSConfig: clientTLS})
	err := m.SendCode(t.Context(), otp.Message{To: "alice@example.com", Code: "123456"})
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("SendCode = %v, want a STARTTLS error", err)
	}
	if n := len(s.messages()); n != 0 {
		t.Errorf("sink received %d messages in plain text", n)
	}
}

func TestSMTPMailer_RefusesUntrustedCertificate(t *testing.T) {
	s, _ := startSink(t, startTLSSink, "", "")
	_, otherTLS := selfSigned(t)
	m := newMailer(t, otp.SMTPConfig{Addr: s.addr, From: "login@broker.example", TLSConfig: otherTLS})
	if err := m.SendCode(t.Context(), otp.Message{To: "alice@example.com", Code: "123456"}); err == nil {
		t.Fatal("SendCode to a server with an untrusted certificate succeeded")
	}
	if n := len(s.messages()); n != 0 {
		t.Errorf("sink received %d messages", n)
	}
}

func TestSMTPMailer_WrongPasswordFails(t *testing.T) {
	s, clientTLS := startSink(t, startTLSSink, "mailer", "s3cret")
	m := newMailer(t, otp.SMTPConfig{
		Addr: s.addr, From: "login@broker.example", Username: "mailer", Password: "wrong-password",
		TLSConfig: clientTLS,
	})
	err := m.SendCode(t.Context(), otp.Message{To: "alice@example.com", Code: "987654"})
	if err == nil {
		t.Fatal("SendCode with a wrong password succeeded")
	}
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 535 {
		t.Errorf("error %v, want the server's 535", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "otp: smtp: ") || strings.Contains(msg, "987654") || strings.Contains(msg, "wrong-password") {
		t.Errorf("error %q: want the otp: smtp: prefix, and neither the code nor the password", msg)
	}
	if n := len(s.messages()); n != 0 {
		t.Errorf("sink received %d messages", n)
	}
}

func TestSMTPMailer_SilentServerTimesOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept() // and never say a word
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})

	for _, tc := range []string{"starttls", "implicit"} {
		t.Run(tc, func(t *testing.T) {
			m := newMailer(t, otp.SMTPConfig{Addr: l.Addr().String(), From: "login@broker.example", TLS: tc, Timeout: 200 * time.Millisecond})
			start := time.Now()
			err := m.SendCode(t.Context(), otp.Message{To: "alice@example.com", Code: "123456"})
			if took := time.Since(start); err == nil || took > 2*time.Second {
				t.Fatalf("SendCode = %v after %v, want an error within the 200ms timeout", err, took)
			}
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("error %v is not a timeout", err)
			}
		})
	}
}

// A server that answers every command within the timeout, but takes longer
// than it in all, must not hold a delivery for a timeout per command.
func TestSMTPMailer_TimeoutCoversWholeConversation(t *testing.T) {
	s, _ := startSink(t, plainSink, "", "")
	s.delay = 300 * time.Millisecond
	m := newMailer(t, otp.SMTPConfig{Addr: s.addr, From: "login@broker.example", TLS: "none", Timeout: 500 * time.Millisecond})
	start := time.Now()
	err := m.SendCode(t.Context(), otp.Message{To: "alice@example.com", Code: "123456"})
	if took := time.Since(start); err == nil || took > 900*time.Millisecond {
		t.Fatalf("SendCode = %v after %v, want an error at the 500ms timeout", err, took)
	}
}

func TestSMTPMailer_ContextCancelStopsDelivery(t *testing.T) {
	s, _ := startSink(t, plainSink, "", "")
	s.delay = 2 * time.Second
	m := newMailer(t, otp.SMTPConfig{Addr: s.addr, From: "login@broker.example", TLS: "none"})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err := m.SendCode(ctx, otp.Message{To: "alice@example.com", Code: "123456"})
	if !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
		t.Fatalf("SendCode = %v after %v, want context.Canceled soon after the cancel", err, time.Since(start))
	}
}

func TestSMTPMailer_RefusesHeaderInjectionInTo(t *testing.T) {
	s, _ := startSink(t, plainSink, "", "")
	m := newMailer(t, otp.SMTPConfig{Addr: s.addr, From: "login@broker.example", TLS: "none"})
	for _, to := range []string{
		"alice@example.com\r\nBcc: mallory@evil.example",
		"alice@example.com\nSubject: free money",
		"alice@example.com\r\n\r\nbody",
		"alice@example.com, mallory@evil.example",
		"Alice <alice@example.com>",
		"<alice@example.com>",
		"alice@example.com>\r\nRCPT TO:<mallory@evil.example",
		"",
		"alice",
	} {
		err := m.SendCode(t.Context(), otp.Message{To: to, Code: "123456"})
		if err == nil {
			t.Errorf("SendCode(To: %q) succeeded", to)
		} else if strings.Contains(err.Error(), "mallory") {
			t.Errorf("SendCode(To: %q): error %q repeats the input", to, err)
		}
	}
	if err := m.SendCode(t.Context(), otp.Message{To: "alice@example.com", Code: "123456", Product: "Acme\r\nBcc: mallory@evil.example"}); err == nil {
		t.Error("SendCode with a line break in Product succeeded")
	}
	if n := len(s.messages()); n != 0 {
		t.Errorf("sink received %d messages", n)
	}
}

func TestSMTPMailer_ProductIsEscaped(t *testing.T) {
	s, _ := startSink(t, plainSink, "", "")
	m := newMailer(t, otp.SMTPConfig{Addr: s.addr, From: "login@broker.example", TLS: "none"})
	if err := m.SendCode(t.Context(), otp.Message{To: "alice@example.com", Code: "123456", Product: `<script>alert(1)</script> Ærø`}); err != nil {
		t.Fatal(err)
	}
	got := s.messages()
	if len(got) != 1 {
		t.Fatalf("sink received %d messages", len(got))
	}
	p := parse(t, got[0].data)
	if html := p.parts["text/html"]; strings.Contains(html, "<script>") || !strings.Contains(html, "&lt;script&gt;") {
		t.Errorf("HTML part does not escape the product:\n%s", html)
	}
	if sub := p.subject(t); sub != "Your <script>alert(1)</script> Ærø sign-in code: 123456" {
		t.Errorf("Subject = %q", sub)
	}
}

func TestNewSMTPMailer_RejectsUnsafeConfig(t *testing.T) {
	for name, cfg := range map[string]otp.SMTPConfig{
		"no port":                     {Addr: "smtp.example.com", From: "login@broker.example"},
		"plain text to remote host":   {Addr: "smtp.example.com:25", From: "login@broker.example", TLS: "none"},
		"plain text to a LAN host":    {Addr: "10.0.0.5:25", From: "login@broker.example", TLS: "none"},
		"unknown tls mode":            {Addr: "smtp.example.com:587", From: "login@broker.example", TLS: "ssl"},
		"from with display name":      {Addr: "smtp.example.com:587", From: "Broker <login@broker.example>"},
		"from with a line break":      {Addr: "smtp.example.com:587", From: "login@broker.example\r\nBcc: x@y.z"},
		"password without username":   {Addr: "smtp.example.com:587", From: "login@broker.example", Password: "p"},
		"negative timeout":            {Addr: "smtp.example.com:587", From: "login@broker.example", Timeout: -time.Second},
		"helo name with a line break": {Addr: "smtp.example.com:587", From: "login@broker.example", HeloName: "a\r\nMAIL FROM:<x@y.z>"},
	} {
		if _, err := otp.NewSMTPMailer(cfg); err == nil || !strings.HasPrefix(err.Error(), "otp: smtp: ") {
			t.Errorf("%s: NewSMTPMailer = %v, want an otp: smtp: error", name, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:1025", "localhost:1025", "[::1]:1025"} {
		if _, err := otp.NewSMTPMailer(otp.SMTPConfig{Addr: addr, From: "login@broker.example", TLS: "none"}); err != nil {
			t.Errorf("TLS none to %s: %v", addr, err)
		}
	}
}

var _ otp.Mailer = (*otp.SMTPMailer)(nil)
