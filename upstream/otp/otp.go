// Package otp is the emailed one-time-code connector: it makes codes and
// hands them to a Mailer, for addresses upstream.NormalizeEmail accepted.
// It keeps no state; the broker stores each challenge (as a keyed hash)
// and checks attempts.
package otp

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"math/big"

	"github.com/idbroker/broker/upstream"
)

// CodeLength is the number of digits in a code.
const CodeLength = 6

// NewCode returns a uniformly random code of CodeLength digits from crypto/rand.
func NewCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", fmt.Errorf("otp: generate code: %w", err)
	}
	return fmt.Sprintf("%0*d", CodeLength, n.Int64()), nil
}

// Message is one code to deliver.
type Message = upstream.CodeMessage

// Mailer delivers codes.
type Mailer = upstream.CodeMailer

// LogMailer writes codes to a log instead of mailing them. It is for the
// development instance only: the code is a credential.
type LogMailer struct {
	Logger *slog.Logger
}

// SendCode logs the code at warning level, so a developer sees it.
func (l LogMailer) SendCode(ctx context.Context, m Message) error {
	l.Logger.WarnContext(ctx, "development mailer: one-time code (never use this mailer in production)",
		"to", m.To, "code", m.Code)
	return nil
}

// Connector is the one-time-code connector. Its subject is the normalised
// email, and a correct code proves the address, so it always vouches for
// the email it verified.
type Connector struct {
	id     string
	mailer Mailer
}

// New returns the connector with the given id that sends codes with mailer.
func New(id string, mailer Mailer) *Connector {
	return &Connector{id: id, mailer: mailer}
}

// ID returns the connector's id.
func (c *Connector) ID() string { return c.id }

// TrustEmail is true: the person proved control of the address.
func (c *Connector) TrustEmail() bool { return true }

// Send delivers a code.
func (c *Connector) Send(ctx context.Context, m Message) error {
	if err := c.mailer.SendCode(ctx, m); err != nil {
		return fmt.Errorf("otp: send code: %w", err)
	}
	return nil
}
