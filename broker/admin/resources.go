package admin

// Administration of protected resources (RFC 8707) stored at run time:
// the operations behind `broker resources ...` and /admin/v1/resources.
// Those of the configuration file are shown read-only, as its connectors
// are, and their ids are never stored.

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/idbroker/broker/storage"
)

// ResourceSpec is a resource to create, as the admin API takes it.
type ResourceSpec struct {
	// ID is the resource indicator: an absolute https URL without a
	// fragment, the aud of its access tokens.
	ID     string   `json:"id"`
	Scopes []string `json:"scopes,omitempty"`
	// AccessTokenTTL is a Go duration ("5m"), at most the broker's
	// access-token lifetime; empty for that.
	AccessTokenTTL string `json:"access_token_ttl,omitempty"`
	ThirdParty     bool   `json:"third_party,omitempty"`
}

// ResourceUpdate changes the fields that are not nil.
type ResourceUpdate struct {
	Scopes         *[]string `json:"scopes"`
	AccessTokenTTL *string   `json:"access_token_ttl"`
	ThirdParty     *bool     `json:"third_party"`
}

// ResourceInfo is a resource as administrators see it.
type ResourceInfo struct {
	ID             string     `json:"id"`
	Scopes         []string   `json:"scopes"`
	AccessTokenTTL string     `json:"access_token_ttl,omitempty"` // empty: the broker's
	ThirdParty     bool       `json:"third_party"`
	Source         string     `json:"source"` // SourceStorage or SourceConfig
	CreatedAt      *time.Time `json:"created_at,omitempty"`
	UpdatedAt      *time.Time `json:"updated_at,omitempty"`
}

func resourceInfo(r storage.Resource, source string) ResourceInfo {
	info := ResourceInfo{ID: r.ID, Scopes: r.Scopes, ThirdParty: r.ThirdParty, Source: source}
	if info.Scopes == nil {
		info.Scopes = []string{}
	}
	if r.AccessTokenTTL > 0 {
		info.AccessTokenTTL = r.AccessTokenTTL.String()
	}
	if source == SourceStorage {
		info.CreatedAt, info.UpdatedAt = &r.CreatedAt, &r.UpdatedAt
	}
	return info
}

// checkResource holds r to the broker's rules (Options.CheckResource),
// whose error names the field.
func (a *Admin) checkResource(r storage.Resource) error {
	if a.checkRes == nil {
		return nil
	}
	if err := a.checkRes(r); err != nil {
		return invalidAdmin("%v", err)
	}
	return nil
}

// resourceTTL parses access_token_ttl; its bound is checkResource's.
func resourceTTL(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, invalidAdmin("access_token_ttl: %q is not a duration such as 5m", v)
	}
	return d, nil
}

// configuredResource finds a resource of the configuration file.
func (a *Admin) configuredResource(id string) (storage.Resource, bool) {
	i := slices.IndexFunc(a.configuredResources, func(r storage.Resource) bool { return r.ID == id })
	if i < 0 {
		return storage.Resource{}, false
	}
	return a.configuredResources[i], true
}

// resourceReadOnly refuses a change to a resource of the configuration file.
func (a *Admin) resourceReadOnly(id string) error {
	if _, ok := a.configuredResource(id); ok {
		return fmt.Errorf("resource %q is defined in the configuration file and is read-only here: %w", id, storage.ErrAlreadyExists)
	}
	return nil
}

// CreateResource stores a new resource once it passes the broker's
// rules; nothing is stored otherwise. This replica serves it from its
// next request, every other within resources.StoredTTL.
func (a *Admin) CreateResource(ctx context.Context, actor string, spec ResourceSpec) (ResourceInfo, error) {
	r := storage.Resource{ID: spec.ID, Scopes: spec.Scopes, ThirdParty: spec.ThirdParty}
	var err error
	if r.AccessTokenTTL, err = resourceTTL(spec.AccessTokenTTL); err != nil {
		return ResourceInfo{}, err
	}
	if err := a.checkResource(r); err != nil {
		return ResourceInfo{}, err
	}
	if err := a.resourceReadOnly(r.ID); err != nil {
		return ResourceInfo{}, err
	}
	r.CreatedAt, r.UpdatedAt = a.now(), a.now()
	if err := a.store.CreateResource(ctx, r); err != nil {
		return ResourceInfo{}, fmt.Errorf("resource %q: %w", r.ID, err)
	}
	a.noteResource()
	return resourceInfo(r, SourceStorage), a.audit(ctx, actor, "resource.create", r.ID, resourceDetails(r))
}

func resourceDetails(r storage.Resource) map[string]string {
	return map[string]string{"scopes": strings.Join(r.Scopes, " "), "access_token_ttl": r.AccessTokenTTL.String(),
		"third_party": fmt.Sprint(r.ThirdParty)}
}

// ListResources lists the configuration file's resources, then the
// stored ones, by id.
func (a *Admin) ListResources(ctx context.Context) ([]ResourceInfo, error) {
	list, err := a.store.ListResources(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ResourceInfo, 0, len(a.configuredResources)+len(list))
	for _, r := range a.configuredResources {
		out = append(out, resourceInfo(r, SourceConfig))
	}
	for _, r := range list {
		out = append(out, resourceInfo(r, SourceStorage))
	}
	return out, nil
}

// GetResource finds a resource of the configuration file or storage.
func (a *Admin) GetResource(ctx context.Context, id string) (ResourceInfo, error) {
	if r, ok := a.configuredResource(id); ok {
		return resourceInfo(r, SourceConfig), nil
	}
	r, err := a.store.GetResource(ctx, id)
	if err != nil {
		return ResourceInfo{}, fmt.Errorf("resource %q: %w", id, err)
	}
	return resourceInfo(r, SourceStorage), nil
}

// UpdateResource changes a stored resource, checked as at creation;
// nothing is stored when the check fails. Tokens issued already keep
// their scope and lifetime.
func (a *Admin) UpdateResource(ctx context.Context, actor, id string, u ResourceUpdate) (ResourceInfo, error) {
	if err := a.resourceReadOnly(id); err != nil {
		return ResourceInfo{}, err
	}
	var ttl time.Duration
	if u.AccessTokenTTL != nil {
		var err error
		if ttl, err = resourceTTL(*u.AccessTokenTTL); err != nil {
			return ResourceInfo{}, err
		}
	}
	var changed []string
	stored, err := a.store.UpdateResource(ctx, id, func(r storage.Resource) (storage.Resource, error) {
		changed = nil
		if u.Scopes != nil {
			r.Scopes, changed = *u.Scopes, append(changed, "scopes")
		}
		if u.AccessTokenTTL != nil {
			r.AccessTokenTTL, changed = ttl, append(changed, "access_token_ttl")
		}
		if u.ThirdParty != nil {
			r.ThirdParty, changed = *u.ThirdParty, append(changed, "third_party")
		}
		r.UpdatedAt = a.now()
		return r, a.checkResource(r)
	})
	if err != nil {
		return ResourceInfo{}, fmt.Errorf("resource %q: %w", id, err)
	}
	a.noteResource()
	details := resourceDetails(stored)
	details["changed"] = strings.Join(changed, ",")
	return resourceInfo(stored, SourceStorage), a.audit(ctx, actor, "resource.update", id, details)
}

// DeleteResource deletes a stored resource. Its access tokens live out
// their lifetime; refresh families granted it are refused it from now
// on (invalid_target).
func (a *Admin) DeleteResource(ctx context.Context, actor, id string) error {
	if err := a.resourceReadOnly(id); err != nil {
		return err
	}
	if err := a.store.DeleteResource(ctx, id); err != nil {
		return fmt.Errorf("resource %q: %w", id, err)
	}
	a.noteResource()
	return a.audit(ctx, actor, "resource.delete", id, nil)
}

// noteResource tells the broker a stored resource changed.
func (a *Admin) noteResource() {
	if a.resourceChanged != nil {
		a.resourceChanged()
	}
}

// resourceRoutes mounts /resources under prefix p. A resource id is a
// URL: it is one path segment, percent-encoded (url.PathEscape).
func (api API) resourceRoutes(mux *http.ServeMux, p string) {
	a := api.Admin
	mux.HandleFunc("GET "+p+"/resources", func(w http.ResponseWriter, r *http.Request) {
		list, err := a.ListResources(r.Context())
		api.adminReply(w, r, http.StatusOK, map[string]any{"resources": list}, err)
	})
	mux.HandleFunc("POST "+p+"/resources", func(w http.ResponseWriter, r *http.Request) {
		var spec ResourceSpec
		if !api.adminDecode(w, r, &spec) {
			return
		}
		info, err := a.CreateResource(r.Context(), adminActor(r), spec)
		api.adminReply(w, r, http.StatusCreated, info, err)
	})
	mux.HandleFunc("GET "+p+"/resources/{id}", func(w http.ResponseWriter, r *http.Request) {
		info, err := a.GetResource(r.Context(), r.PathValue("id"))
		api.adminReply(w, r, http.StatusOK, info, err)
	})
	mux.HandleFunc("PATCH "+p+"/resources/{id}", func(w http.ResponseWriter, r *http.Request) {
		var u ResourceUpdate
		if !api.adminDecode(w, r, &u) {
			return
		}
		info, err := a.UpdateResource(r.Context(), adminActor(r), r.PathValue("id"), u)
		api.adminReply(w, r, http.StatusOK, info, err)
	})
	mux.HandleFunc("DELETE "+p+"/resources/{id}", func(w http.ResponseWriter, r *http.Request) {
		api.adminReply(w, r, http.StatusNoContent, nil, a.DeleteResource(r.Context(), adminActor(r), r.PathValue("id")))
	})
}
