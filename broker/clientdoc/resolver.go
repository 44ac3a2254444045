package clientdoc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/edge"
	"github.com/idbroker/broker/broker/ratelimit"
)

// RefusalTTL is how long a document that could not be fetched, or was
// refused, stays the answer. The draft says not to cache error answers,
// lest a client be refused after it fixed its document; a few seconds
// refuse nobody for long, and keep a URL that fails slowly from being
// fetched once per request.
const RefusalTTL = 5 * time.Second

// maxEntries bounds the cache. Past it, entries that are not being
// fetched make room; so anyone naming many URLs costs others at most a
// fetch again, never a refusal.
const maxEntries = 10000

// Options are what a Resolver needs besides its Config.
type Options struct {
	// HTTPClient fetches the documents; it must refuse what
	// broker/safefetch refuses.
	HTTPClient *http.Client
	Now        func() time.Time
	Log        *slog.Logger
	// Limiter counts the fetches of each client address against
	// Config.FetchRateLimit.
	Limiter *ratelimit.Limiter
}

// Resolver turns client ids that are https URLs into the clients their
// metadata documents describe (clients.Documents). It is safe for
// concurrent use.
type Resolver struct {
	cfg  Config
	http *http.Client
	now  func() time.Time
	log  *slog.Logger
	// limiter counts fetches per client address; nil counts none.
	limiter *ratelimit.Limiter

	mu      sync.Mutex // guards entries and each entry's fields
	entries map[string]*entry
}

// entry is one fetch of a document and, once done is closed, its
// outcome, kept until expires.
type entry struct {
	done    chan struct{}
	fetched bool // done is closed
	client  *clients.Client
	err     error
	expires time.Time
}

// New returns a Resolver with cfg, which has its defaults set.
func New(cfg Config, o Options) *Resolver {
	return &Resolver{cfg: cfg, http: o.HTTPClient, now: o.Now, log: o.Log, limiter: o.Limiter, entries: map[string]*entry{}}
}

// Client returns the client that the metadata document at id describes:
// the cached one while its caching headers allow, else the outcome of a
// fetch, shared by every caller asking meanwhile. A document that cannot
// be fetched or is refused is an error wrapping
// clients.ErrUnusableDocument; the reason is logged once per fetch. A
// caller whose ctx ends stops waiting; the fetch goes on for the others,
// bounded by the configured timeout.
func (r *Resolver) Client(ctx context.Context, id string) (*clients.Client, error) {
	if _, err := checkClientIDURL(id); err != nil {
		r.log.InfoContext(ctx, "client metadata document refused", "client_id", id, "reason", err)
		return nil, fmt.Errorf("%w: %w", clients.ErrUnusableDocument, err)
	}
	r.mu.Lock()
	e := r.entry(id)
	r.mu.Unlock()
	if e == nil {
		// A fetch is counted against the client address before it
		// starts; an answer from the cache is not.
		if err := r.takeFetch(ctx); err != nil {
			return nil, err
		}
		r.mu.Lock()
		if e = r.entry(id); e == nil {
			e = &entry{done: make(chan struct{})}
			r.add(id, e)
			go r.fetchInto(context.WithoutCancel(ctx), id, e)
		}
		r.mu.Unlock()
	}
	select {
	case <-e.done:
		return e.client, e.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: gave up waiting for it: %w", clients.ErrUnusableDocument, context.Cause(ctx))
	}
}

// entry returns the cached or pending entry of id, nil when a fetch is
// needed. r.mu is held.
func (r *Resolver) entry(id string) *entry {
	e := r.entries[id]
	if e == nil || (e.fetched && !r.now().Before(e.expires)) {
		return nil
	}
	return e
}

// takeFetch counts one fetch for the request's client address, and
// refuses it past Config.FetchRateLimit (an error wrapping
// clients.ErrDocumentFetchesLimited). A counter that cannot be taken
// refuses too, with the store's error (docs/design.md rule 7).
func (r *Resolver) takeFetch(ctx context.Context) error {
	if r.limiter == nil {
		return nil
	}
	ok, retry, err := r.limiter.Take(ctx, "client_document_fetch", ratelimit.Source(edge.Source(ctx)), r.cfg.FetchRateLimit)
	if err != nil {
		return fmt.Errorf("client metadata document fetch limit: %w", err)
	}
	if !ok {
		return fmt.Errorf("%w; try again in %s", clients.ErrDocumentFetchesLimited, ratelimit.RetryAfter(retry)+"s")
	}
	return nil
}

// add puts e in the cache under id. A full cache is rebuilt first with
// the fetches under way and at most half of the rest, what has not run
// out: a rebuild is paid for once per maxEntries/2 adds (walking the
// whole cache on every add cost 87 µs under the lock,
// BenchmarkResolverAddWhenFull), and a map that is dropped whole, not
// deleted from at its bound, keeps no room for entries it no longer
// holds. r.mu is held.
func (r *Resolver) add(id string, e *entry) {
	if len(r.entries) >= maxEntries {
		now := r.now()
		kept := make(map[string]*entry, maxEntries/2)
		for k, old := range r.entries {
			if !old.fetched || (len(kept) < maxEntries/2 && now.Before(old.expires)) {
				kept[k] = old
			}
		}
		r.entries = kept
	}
	r.entries[id] = e
}

// fetchInto fetches the document at id, checks it, and records the
// outcome in e.
func (r *Resolver) fetchInto(ctx context.Context, id string, e *entry) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	client, lifetime, err := r.fetch(ctx, id)
	if err != nil {
		r.log.InfoContext(ctx, "client metadata document refused", "client_id", id, "reason", err)
		err = fmt.Errorf("%w: %w", clients.ErrUnusableDocument, err)
		lifetime = RefusalTTL
	}
	r.mu.Lock()
	e.client, e.err, e.expires, e.fetched = client, err, r.now().Add(lifetime), true
	r.mu.Unlock()
	close(e.done)
}

// fetch GETs the document at id (draft section 4: 200 only, no
// redirects, JSON) reading at most MaxBytes of it, and returns the
// client it describes and how long it may be kept.
func (r *Resolver) fetch(ctx context.Context, id string) (*clients.Client, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("GET answered %s, not 200 OK", resp.Status)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || !jsonMediaType(mt) {
		return nil, 0, fmt.Errorf("content type %q is not application/json", resp.Header.Get("Content-Type"))
	}
	limit := int64(r.cfg.MaxBytes)
	if resp.ContentLength > limit {
		return nil, 0, fmt.Errorf("the document is %d bytes, more than %d", resp.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, 0, fmt.Errorf("reading the document: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, 0, fmt.Errorf("the document is more than %d bytes", limit)
	}
	sc, err := parseDocument(id, body)
	if err != nil {
		return nil, 0, err
	}
	host := req.URL.Hostname()
	return clients.FromDocument(sc, host, r.trusted(host)), r.lifetime(resp.Header), nil
}

// jsonMediaType accepts application/json and, as the draft allows, an
// application/<name>+json type.
func jsonMediaType(mt string) bool {
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// trusted reports whether host is one of the trusted domains or under
// one.
func (r *Resolver) trusted(host string) bool {
	host = strings.ToLower(host)
	for _, d := range r.cfg.TrustedDomains {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// lifetime is how long an answer with header h may be kept (RFC 9111
// sections 4.2.1 and 5): none with no-store or no-cache (the broker does
// not revalidate), else max-age, else Expires (less Date), else the
// least the operator allows; whatever it is held within MinCacheAge and
// MaxCacheAge, except that an answer that may not be kept is not.
func (r *Resolver) lifetime(h http.Header) time.Duration {
	var ttl time.Duration
	maxAge, found := -1, false
	for _, line := range h.Values("Cache-Control") {
		for _, directive := range strings.Split(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(directive), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return 0
			case "max-age":
				n, err := strconv.Atoi(strings.Trim(value, `"`))
				if err != nil || n < 0 {
					return 0 // an invalid max-age makes the answer stale
				}
				maxAge, found = n, true
			}
		}
	}
	switch {
	case found:
		ttl = time.Duration(maxAge) * time.Second
	case h.Get("Expires") != "":
		expires, err := http.ParseTime(h.Get("Expires"))
		if err != nil {
			return 0 // an invalid Expires means already expired
		}
		date, err := http.ParseTime(h.Get("Date"))
		if err != nil {
			date = r.now()
		}
		ttl = expires.Sub(date)
	default:
		ttl = r.cfg.MinCacheAge
	}
	if ttl <= 0 {
		return 0
	}
	return min(max(ttl, r.cfg.MinCacheAge), r.cfg.MaxCacheAge)
}
