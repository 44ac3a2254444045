package otp

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/idbroker/broker/upstream"
)

// Config is the otp connector's settings, an upstream.Config.
type Config struct {
	Mailer MailerConfig `yaml:"mailer" json:"mailer"`
}

// MailerConfig says how codes are delivered.
type MailerConfig struct {
	Type     string `yaml:"type" json:"type"` // log (the default) or smtp
	Addr     string `yaml:"addr" json:"addr"` // as SMTPConfig
	From     string `yaml:"from" json:"from"`
	Username string `yaml:"username" json:"username"`
	Password string `yaml:"password" json:"password"`
	TLS      string `yaml:"tls" json:"tls"` // starttls (default), implicit, none
}

var _ upstream.Config = Config{}

// Validate checks the mailer settings; it makes no connection.
func (cfg Config) Validate(id string) error {
	if _, err := cfg.mailer(nil); err != nil {
		return fmt.Errorf("otp: connector %q: %w", id, err)
	}
	return nil
}

// Open returns the connector. A log (or unset) mailer is deps.Mailer, or
// LogMailer writing to deps.Logger when that is nil.
func (cfg Config) Open(_ context.Context, id string, deps upstream.Deps) (upstream.Connector, error) {
	fallback := deps.Mailer
	if fallback == nil {
		logger := deps.Logger
		if logger == nil {
			logger = slog.Default()
		}
		fallback = LogMailer{Logger: logger}
	}
	m, err := cfg.mailer(fallback)
	if err != nil {
		return nil, err
	}
	return New(id, m), nil
}

func (cfg Config) mailer(fallback Mailer) (Mailer, error) {
	switch cfg.Mailer.Type {
	case "", "log":
		return fallback, nil
	case "smtp":
		return NewSMTPMailer(SMTPConfig{
			Addr:     cfg.Mailer.Addr,
			From:     cfg.Mailer.From,
			Username: cfg.Mailer.Username,
			Password: cfg.Mailer.Password,
			TLS:      cfg.Mailer.TLS,
		})
	}
	return nil, fmt.Errorf("mailer type %q is not supported", cfg.Mailer.Type)
}
