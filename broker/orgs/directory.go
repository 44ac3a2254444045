package orgs

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idbroker/broker/storage"
)

// DefaultPoll is how often a Directory asks storage whether anything
// changed, when New is given no interval: a change reaches every replica
// within it.
const DefaultPoll = 2 * time.Second

// pageSize is how many organisations one ListOrganizations call reads.
const pageSize = 500

// Directory is a cached view of the organisations, their verified
// domains and the stored connectors. Its lookups read one immutable
// snapshot, swapped whole on each reload, so they never block and never
// see half a reload. It is safe for concurrent use.
type Directory struct {
	store storage.Organizations
	log   *slog.Logger
	poll  time.Duration

	view atomic.Pointer[view]

	// mu serialises loads and the subscribers' calls, so a subscriber
	// sees the loads in the order they happened and never two at once.
	mu   sync.Mutex
	subs []func(stored []storage.StoredConnector)
}

// view is one load of the directory.
type view struct {
	loaded     bool
	generation int64
	byID       map[string]storage.Organization
	bySlug     map[string]string // slug → id
	byDomain   map[string]string // verified domain → id
	byUpstream map[string]string // upstream organisation id → id
	connectors map[string][]string
	orgOf      map[string]string // stored connector id → organisation id
	stored     []storage.StoredConnector
}

// New returns a directory of store's organisations, empty until Load.
// poll is DefaultPoll when not positive; log is slog.Default() when nil.
func New(store storage.Organizations, log *slog.Logger, poll time.Duration) *Directory {
	if poll <= 0 {
		poll = DefaultPoll
	}
	if log == nil {
		log = slog.Default()
	}
	d := &Directory{store: store, log: log, poll: poll}
	d.view.Store(&view{})
	return d
}

// Load reads the whole view from storage and tells the subscribers. The
// broker calls it once before serving, and fails to start when it fails:
// a broker that cannot know its organisations would route logins wrongly.
func (d *Directory) Load(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	gen, err := d.store.OrgsGeneration(ctx)
	if err != nil {
		return fmt.Errorf("orgs: generation: %w", err)
	}
	return d.load(ctx, gen)
}

// load reads the view as of generation gen (or later) and installs it.
// The generation is read before the rows, so a change made while they
// are read makes the next poll load again rather than be missed.
func (d *Directory) load(ctx context.Context, gen int64) error {
	v := &view{
		loaded:     true,
		generation: gen,
		byID:       map[string]storage.Organization{},
		bySlug:     map[string]string{},
		byDomain:   map[string]string{},
		byUpstream: map[string]string{},
		connectors: map[string][]string{},
		orgOf:      map[string]string{},
	}
	for after := ""; ; {
		page, err := d.store.ListOrganizations(ctx, after, pageSize)
		if err != nil {
			return fmt.Errorf("orgs: list organizations: %w", err)
		}
		for _, o := range page {
			v.byID[o.ID] = o
			v.bySlug[o.Slug] = o.ID
			for _, up := range o.UpstreamIDs {
				v.byUpstream[up] = o.ID
			}
		}
		if len(page) < pageSize {
			break
		}
		after = page[len(page)-1].ID
	}
	domains, err := d.store.ListVerifiedDomains(ctx)
	if err != nil {
		return fmt.Errorf("orgs: list verified domains: %w", err)
	}
	for _, dom := range domains {
		if _, ok := v.byID[dom.OrgID]; ok && dom.Verified {
			v.byDomain[dom.Domain] = dom.OrgID
		}
	}
	stored, err := d.store.ListConnectors(ctx)
	if err != nil {
		return fmt.Errorf("orgs: list connectors: %w", err)
	}
	v.stored = stored
	for _, c := range stored {
		if c.OrgID == "" {
			continue
		}
		v.orgOf[c.ID] = c.OrgID
		if !c.Disabled {
			v.connectors[c.OrgID] = append(v.connectors[c.OrgID], c.ID)
		}
	}
	d.view.Store(v)
	for _, fn := range d.subs {
		fn(stored)
	}
	return nil
}

// Run reloads the view whenever storage's generation changes, asking
// every poll interval, until ctx is done. A store that cannot answer
// leaves the last view in place (logins keep being routed as they were)
// and is asked again at the next tick.
func (d *Directory) Run(ctx context.Context) {
	t := time.NewTicker(d.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := d.refresh(ctx); err != nil && ctx.Err() == nil {
				d.log.WarnContext(ctx, "organisations not reloaded; keeping the last view", "err", err)
			}
		}
	}
}

// refresh loads the view again if the generation moved.
func (d *Directory) refresh(ctx context.Context) error {
	gen, err := d.store.OrgsGeneration(ctx)
	if err != nil {
		return fmt.Errorf("orgs: generation: %w", err)
	}
	if v := d.view.Load(); v.loaded && gen == v.generation {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.load(ctx, gen)
}

// Subscribe has fn called after each load with the stored connectors,
// disabled ones included, by id; at once, too, when a view is already
// loaded, so a late subscriber misses nothing. fn must not call
// Subscribe.
func (d *Directory) Subscribe(fn func(stored []storage.StoredConnector)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.subs = append(d.subs, fn)
	if v := d.view.Load(); v.loaded {
		fn(v.stored)
	}
}

// ForDomain is the organisation that holds email domain verified.
// Unverified claims never route.
func (d *Directory) ForDomain(domain string) (storage.Organization, bool) {
	v := d.view.Load()
	return v.org(v.byDomain[strings.ToLower(domain)])
}

// Get finds an organisation by its id or its slug.
func (d *Directory) Get(idOrSlug string) (storage.Organization, bool) {
	v := d.view.Load()
	if o, ok := v.byID[idOrSlug]; ok {
		return o, true
	}
	return v.org(v.bySlug[idOrSlug])
}

// ForUpstream is the organisation that names upstreamOrgID (an Auth0
// org_id, an Entra tenant id, a WorkOS organization id) among its
// UpstreamIDs.
func (d *Directory) ForUpstream(upstreamOrgID string) (storage.Organization, bool) {
	v := d.view.Load()
	return v.org(v.byUpstream[upstreamOrgID])
}

// Connectors are the ids of organisation orgID's enabled stored
// connectors, by id. The caller must not modify the slice.
func (d *Directory) Connectors(orgID string) []string {
	return d.view.Load().connectors[orgID]
}

// OrgOfConnector is the organisation stored connector connectorID
// belongs to (whether enabled or not); false for a connector of no
// organisation, or of the configuration file.
func (d *Directory) OrgOfConnector(connectorID string) (storage.Organization, bool) {
	v := d.view.Load()
	return v.org(v.orgOf[connectorID])
}

func (v *view) org(id string) (storage.Organization, bool) {
	if id == "" {
		return storage.Organization{}, false
	}
	o, ok := v.byID[id]
	return o, ok
}
