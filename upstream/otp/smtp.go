package otp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/idbroker/broker/upstream"
)

// SMTPConfig configures an SMTPMailer.
type SMTPConfig struct {
	// Addr is the submission server as host:port, like "smtp.example.com:587".
	Addr string
	// From is the envelope sender and From header: one plain address,
	// without a display name.
	From string
	// Username and Password, when Username is set, authenticate with AUTH
	// PLAIN, which only ever happens inside TLS or on loopback.
	Username string
	Password string
	// TLS is how the connection is protected:
	//   - "starttls" (the default): upgrade with STARTTLS before anything
	//     else, and refuse to send if the server does not offer it;
	//   - "implicit": TLS from the first byte, usually on port 465;
	//   - "none": plain text, allowed only when Addr's host is a loopback
	//     address or "localhost", for a development sink.
	TLS string
	// TLSConfig, when set, is used for the TLS connection, for example to
	// trust a private CA. Its ServerName defaults to Addr's host.
	TLSConfig *tls.Config
	// Timeout bounds the whole delivery: dial, TLS, and every command up
	// to the end of the message. Zero means 10 seconds.
	Timeout time.Duration
	// HeloName is the name sent in EHLO. Empty means "localhost".
	HeloName string
}

// SMTPMailer mails codes through an SMTP submission server. Each SendCode
// opens its own connection; it does not retry, queue or pool connections,
// and it does not send to addresses that need SMTPUTF8 unless the server
// offers it. It never logs.
type SMTPMailer struct {
	addr     string
	from     string
	username string
	password string
	mode     string
	tls      *tls.Config // nil when mode is "none"
	timeout  time.Duration
	helo     string
}

// NewSMTPMailer checks cfg and returns a mailer. It does not connect: a
// server that is down is found on the first SendCode.
func NewSMTPMailer(cfg SMTPConfig) (*SMTPMailer, error) {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("otp: smtp: address %q is not host:port", cfg.Addr)
	}
	if err := plainAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("otp: smtp: from %q is not a single plain address", cfg.From)
	}
	if cfg.Username == "" && cfg.Password != "" {
		return nil, errors.New("otp: smtp: a password is set without a username")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("otp: smtp: negative timeout %v", cfg.Timeout)
	}
	m := &SMTPMailer{
		addr:     cfg.Addr,
		from:     cfg.From,
		username: cfg.Username,
		password: cfg.Password,
		mode:     cfg.TLS,
		timeout:  cfg.Timeout,
		helo:     cfg.HeloName,
	}
	if m.mode == "" {
		m.mode = "starttls"
	}
	if m.timeout == 0 {
		m.timeout = 10 * time.Second
	}
	if m.helo == "" {
		m.helo = "localhost"
	} else if strings.ContainsFunc(m.helo, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return nil, fmt.Errorf("otp: smtp: helo name %q is not a host name", m.helo)
	}
	switch m.mode {
	case "starttls", "implicit":
		if cfg.TLSConfig != nil {
			m.tls = cfg.TLSConfig.Clone()
		} else {
			m.tls = &tls.Config{}
		}
		if m.tls.ServerName == "" {
			m.tls.ServerName = host
		}
		if m.tls.MinVersion == 0 {
			m.tls.MinVersion = tls.VersionTLS12
		}
	case "none":
		// The code and the password would cross the network in clear.
		if !isLoopback(host) {
			return nil, fmt.Errorf("otp: smtp: tls %q is allowed only for a loopback host, not %q", m.mode, host)
		}
	default:
		return nil, fmt.Errorf("otp: smtp: tls %q: want starttls, implicit or none", m.mode)
	}
	return m, nil
}

// SendCode mails m.Code to m.To as a multipart/alternative message with a
// plain-text and an HTML part; the code is also in the subject, where a
// phone's notification shows it. It returns once the server has accepted
// the message, and fails if that takes longer than the configured timeout
// or ctx is done first. Errors never contain the code or the password.
func (s *SMTPMailer) SendCode(ctx context.Context, m Message) error {
	if err := plainAddress(m.To); err != nil {
		return errors.New("otp: smtp: recipient is not a single plain address")
	}
	if !isCode(m.Code) {
		return errors.New("otp: smtp: the code is not a string of digits")
	}
	if len(m.Product) > 100 || strings.ContainsFunc(m.Product, unicode.IsControl) || !utf8.ValidString(m.Product) {
		return fmt.Errorf("otp: smtp: product name %q is not one short line", m.Product)
	}
	msg, err := s.compose(m, time.Now())
	if err != nil {
		return err
	}
	if err := s.deliver(ctx, m.To, msg); err != nil {
		return fmt.Errorf("otp: smtp: %s: %w", s.addr, err)
	}
	return nil
}

// deliver runs one SMTP conversation.
func (s *SMTPMailer) deliver(ctx context.Context, to string, msg []byte) (err error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	// Closing the connection when ctx ends interrupts whatever read or
	// write is blocked, TLS handshakes included. go-smtp's own deadlines
	// are per command, so they alone would let a server that answers each
	// command slowly hold a delivery for a timeout per command.
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
	}()

	var c *smtp.Client
	switch s.mode {
	case "implicit":
		tc := tls.Client(conn, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		c = smtp.NewClient(tc)
	case "starttls":
		// NewClientStartTLS fails when the server does not advertise
		// STARTTLS, rather than carrying on in plain text.
		c, err = smtp.NewClientStartTLS(conn, s.tls)
		if err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	// The library's per-command timeouts are minutes long (RFC 5321's
	// advice for relays); no single command may outlast ours either.
	c.CommandTimeout = s.timeout
	c.SubmissionTimeout = s.timeout

	if err := c.Hello(s.helo); err != nil {
		return fmt.Errorf("ehlo: %w", err)
	}
	if s.mode != "none" {
		// A STARTTLS that the handshake did not complete must not let
		// the password or the code through.
		if _, ok := c.TLSConnectionState(); !ok {
			return errors.New("tls: connection is not encrypted")
		}
	}
	if s.username != "" {
		if !c.SupportsAuth(sasl.Plain) {
			return errors.New("auth: server does not offer AUTH PLAIN")
		}
		if err := c.Auth(sasl.NewPlainClient("", s.username, s.password)); err != nil {
			return fmt.Errorf("auth as %q: %w", s.username, err)
		}
	}
	var opts *smtp.MailOptions
	if !isASCII(s.from) || !isASCII(to) {
		opts = &smtp.MailOptions{UTF8: true}
	}
	if err := c.Mail(s.from, opts); err != nil {
		return fmt.Errorf("mail from: %w", err)
	}
	if err := c.Rcpt(to, nil); err != nil {
		return fmt.Errorf("rcpt to: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	// The server has taken the message. A failed QUIT must not make the
	// caller send a second code.
	_ = c.Quit()
	return nil
}

// htmlBody is the HTML part. html/template escapes the product name.
var htmlBody = template.Must(template.New("otp").Parse(`<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Your sign-in code</title></head>
<body style="font-family: sans-serif">
<p>Your {{with .Product}}{{.}} {{end}}sign-in code is:</p>
<p style="font-size: 2em; font-weight: bold; letter-spacing: 0.2em; font-family: monospace">{{.Code}}</p>
<p>Enter it on the page where you asked for it. Do not share it with anyone.</p>
<p>If you did not ask for a code, you can ignore this email.</p>
</body>
</html>
`))

// compose builds the RFC 5322 message, with CRLF line ends.
func (s *SMTPMailer) compose(m Message, now time.Time) ([]byte, error) {
	product := m.Product
	if product != "" {
		product += " "
	}
	text := "Your " + product + "sign-in code is:\n\n" +
		"    " + m.Code + "\n\n" +
		"Enter it on the page where you asked for it. Do not share it with anyone.\n\n" +
		"If you did not ask for a code, you can ignore this email.\n"
	var html bytes.Buffer
	if err := htmlBody.Execute(&html, m); err != nil {
		return nil, fmt.Errorf("otp: smtp: html body: %w", err)
	}

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, p := range []struct{ typ, content string }{
		{"text/plain; charset=utf-8", text},
		{"text/html; charset=utf-8", html.String()},
	} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {p.typ},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, fmt.Errorf("otp: smtp: compose: %w", err)
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := qp.Write([]byte(p.content)); err != nil {
			return nil, fmt.Errorf("otp: smtp: compose: %w", err)
		}
		if err := qp.Close(); err != nil {
			return nil, fmt.Errorf("otp: smtp: compose: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("otp: smtp: compose: %w", err)
	}

	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("otp: smtp: message id: %w", err)
	}
	var msg bytes.Buffer
	// Every value below is either checked (addresses, code, product) or
	// built here, so none can carry a line break into the header.
	for _, h := range [][2]string{
		{"From", s.from},
		{"To", m.To},
		{"Subject", mime.QEncoding.Encode("utf-8", "Your "+product+"sign-in code: "+m.Code)},
		{"Date", now.Format(time.RFC1123Z)},
		{"Message-ID", "<" + hex.EncodeToString(id) + s.from[strings.LastIndexByte(s.from, '@'):] + ">"},
		{"MIME-Version", "1.0"},
		{"Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()})},
	} {
		msg.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	msg.WriteString("\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes(), nil
}

// plainAddress accepts one bare address, like "alice@example.com", and
// nothing that could add a header or a recipient.
func plainAddress(s string) error {
	if s == "" || len(s) > 254 || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) {
		return upstream.ErrInvalidEmail
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || strings.ContainsAny(s, "<>\",;") {
		return upstream.ErrInvalidEmail
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return upstream.ErrInvalidEmail
	}
	return nil
}

func isCode(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// isLoopback reports whether host names this machine: "localhost" or a
// loopback IP.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
