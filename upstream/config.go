package upstream

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// Config is one connector type's own settings, decoded from the broker's
// configuration (YAML) or from storage (JSON) by upstream/registry. The
// settings every connector has (id, type, display name, domains, timeout,
// recheckInterval) are the broker's and are not part of it.
type Config interface {
	// Validate reports the first thing wrong with the settings of
	// connector id, naming the connector and the setting. It calls no
	// upstream.
	Validate(id string) error
	// Open makes connector id from the settings and the shared deps.
	// Connectors discover their upstream lazily: Open calls no upstream
	// either, so one that is down does not stop the broker's start.
	Open(ctx context.Context, id string, deps Deps) (Connector, error)
}

// Deps are what the broker lends every connector it opens.
type Deps struct {
	// HTTPClient makes every call to the upstream; each connector's own
	// default when nil.
	HTTPClient *http.Client
	// Clock is time.Now when nil.
	Clock func() time.Time
	// Logger is slog.Default() when nil.
	Logger *slog.Logger
	// Timeout is the connector's timeout setting (zero for its default):
	// it bounds the fetches a connector shares between requests.
	Timeout time.Duration
	// Mailer delivers one-time codes for an otp connector whose mailer
	// type is log or unset; nil writes them to Logger.
	Mailer CodeMailer
}

// CodeMessage is one one-time code to deliver.
type CodeMessage struct {
	To      string
	Code    string
	Product string // shown in the subject and body
}

// CodeMailer delivers one-time codes.
type CodeMailer interface {
	SendCode(ctx context.Context, m CodeMessage) error
}

// Opened is what an Open returns from a constructor's (c, err): nil and
// the error when there is one, so that a nil *T never becomes a non-nil
// Connector.
func Opened[T Connector](c T, err error) (Connector, error) {
	if err != nil {
		return nil, err
	}
	return c, nil
}
