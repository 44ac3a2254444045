package admin

// The organisations' part of the admin HTTP API: /admin/v1/orgs, with
// their domains and members beneath. An organisation is named in the path
// by its id or its slug.

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/idbroker/broker/broker/answer"
)

// orgRoutes mounts the organisations' endpoints on mux under p.
func (api API) orgRoutes(mux *http.ServeMux, p string) {
	a := api.Admin
	org := p + "/orgs/{org}"
	mux.HandleFunc("POST "+p+"/orgs", func(w http.ResponseWriter, r *http.Request) {
		var spec OrgSpec
		if !api.adminDecode(w, r, &spec) {
			return
		}
		info, err := a.CreateOrganization(r.Context(), adminActor(r), spec)
		api.orgReply(w, r, http.StatusCreated, info, err)
	})
	mux.HandleFunc("GET "+p+"/orgs", func(w http.ResponseWriter, r *http.Request) {
		limit, ok := api.pageLimit(w, r)
		if !ok {
			return
		}
		list, err := a.ListOrganizations(r.Context(), r.URL.Query().Get("after"), limit)
		resp := map[string]any{"orgs": list}
		if len(list) == pageLimit(limit) {
			resp["next_after"] = list[len(list)-1].ID
		}
		api.orgReply(w, r, http.StatusOK, resp, err)
	})
	mux.HandleFunc("GET "+org, func(w http.ResponseWriter, r *http.Request) {
		info, err := a.GetOrganization(r.Context(), r.PathValue("org"))
		api.orgReply(w, r, http.StatusOK, info, err)
	})
	mux.HandleFunc("PATCH "+org, func(w http.ResponseWriter, r *http.Request) {
		var u OrgUpdate
		if !api.adminDecode(w, r, &u) {
			return
		}
		info, err := a.UpdateOrganization(r.Context(), adminActor(r), r.PathValue("org"), u)
		api.orgReply(w, r, http.StatusOK, info, err)
	})
	mux.HandleFunc("DELETE "+org, func(w http.ResponseWriter, r *http.Request) {
		api.orgReply(w, r, http.StatusNoContent, nil, a.DeleteOrganization(r.Context(), adminActor(r), r.PathValue("org")))
	})

	mux.HandleFunc("GET "+org+"/connectors", func(w http.ResponseWriter, r *http.Request) {
		list, err := a.OrgConnectors(r.Context(), r.PathValue("org"))
		api.orgReply(w, r, http.StatusOK, map[string]any{"connectors": list}, err)
	})
	mux.HandleFunc("POST "+org+"/connectors", func(w http.ResponseWriter, r *http.Request) {
		var spec ConnectorSpec
		if !api.adminDecode(w, r, &spec) {
			return
		}
		info, err := a.CreateOrgConnector(r.Context(), adminActor(r), r.PathValue("org"), spec)
		api.orgReply(w, r, http.StatusCreated, info, err)
	})

	mux.HandleFunc("GET "+org+"/domains", func(w http.ResponseWriter, r *http.Request) {
		list, err := a.ListDomains(r.Context(), r.PathValue("org"))
		api.orgReply(w, r, http.StatusOK, map[string]any{"domains": list}, err)
	})
	mux.HandleFunc("POST "+org+"/domains", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Domain string `json:"domain"`
		}
		if !api.adminDecode(w, r, &req) {
			return
		}
		info, err := a.AddDomain(r.Context(), adminActor(r), r.PathValue("org"), req.Domain)
		api.orgReply(w, r, http.StatusCreated, info, err)
	})
	// {} verifies by DNS; {"assert": true, "reason": ...} on an
	// administrator's word.
	mux.HandleFunc("POST "+org+"/domains/{domain}/verify", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Assert bool   `json:"assert"`
			Reason string `json:"reason"`
		}
		if !api.adminDecode(w, r, &req) {
			return
		}
		var info DomainInfo
		var err error
		switch {
		case req.Assert:
			info, err = a.AssertDomain(r.Context(), adminActor(r), r.PathValue("org"), r.PathValue("domain"), req.Reason)
		case req.Reason != "":
			err = invalidAdmin("reason: only an assertion (\"assert\": true) takes a reason")
		default:
			info, err = a.VerifyDomain(r.Context(), adminActor(r), r.PathValue("org"), r.PathValue("domain"))
		}
		api.orgReply(w, r, http.StatusOK, info, err)
	})
	mux.HandleFunc("DELETE "+org+"/domains/{domain}", func(w http.ResponseWriter, r *http.Request) {
		api.orgReply(w, r, http.StatusNoContent, nil, a.RemoveDomain(r.Context(), adminActor(r), r.PathValue("org"), r.PathValue("domain")))
	})

	mux.HandleFunc("GET "+org+"/members", func(w http.ResponseWriter, r *http.Request) {
		limit, ok := api.pageLimit(w, r)
		if !ok {
			return
		}
		list, err := a.ListMembers(r.Context(), r.PathValue("org"), r.URL.Query().Get("after"), limit)
		resp := map[string]any{"members": list}
		if len(list) == pageLimit(limit) {
			resp["next_after"] = list[len(list)-1].UserID
		}
		api.orgReply(w, r, http.StatusOK, resp, err)
	})
	mux.HandleFunc("POST "+org+"/members", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			UserID string `json:"user_id"`
			Role   string `json:"role"`
		}
		if !api.adminDecode(w, r, &req) {
			return
		}
		info, created, err := a.AddMember(r.Context(), adminActor(r), r.PathValue("org"), req.UserID, req.Role)
		status := http.StatusOK // a member already: nothing was made
		if created {
			status = http.StatusCreated
		}
		api.orgReply(w, r, status, info, err)
	})
	mux.HandleFunc("PATCH "+org+"/members/{user}", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Role string `json:"role"`
		}
		if !api.adminDecode(w, r, &req) {
			return
		}
		info, err := a.SetMemberRole(r.Context(), adminActor(r), r.PathValue("org"), r.PathValue("user"), req.Role)
		api.orgReply(w, r, http.StatusOK, info, err)
	})
	mux.HandleFunc("DELETE "+org+"/members/{user}", func(w http.ResponseWriter, r *http.Request) {
		_, err := a.RemoveMember(r.Context(), adminActor(r), r.PathValue("org"), r.PathValue("user"))
		api.orgReply(w, r, http.StatusNoContent, nil, err)
	})
}

// pageLimit reads the limit parameter of a paged list (100 when absent).
func (api API) pageLimit(w http.ResponseWriter, r *http.Request) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 100, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxOrgPage {
		api.adminReply(w, r, 0, nil, invalidAdmin("limit: %q is not a number from 1 to %d", truncate(v), MaxOrgPage))
		return 0, false
	}
	return n, true
}

// orgReply is adminReply knowing the answers of domain verification: a
// domain DNS does not vouch for is a conflict with the world as it is
// (409), a resolver that did not answer a failure to answer (503), each
// saying what happened, which is the administrator's to fix.
func (api API) orgReply(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	switch {
	case errors.Is(err, ErrDomainUnverified):
		answer.OAuthError(w, http.StatusConflict, "domain_not_verified", err.Error())
	case errors.Is(err, ErrDNSLookup):
		api.Log.InfoContext(r.Context(), "domain verification: DNS lookup failed", "err", err)
		answer.OAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", err.Error())
	default:
		api.adminReply(w, r, status, v, err)
	}
}
