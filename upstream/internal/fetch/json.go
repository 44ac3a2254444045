package fetch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/idbroker/broker/upstream"
)

// GetJSON GETs url (with a bearer token when given) and decodes the JSON
// answer into v. Transport failures, timeouts, 429 and 5xx are
// upstream.ErrUnavailable; 401 and 403 are upstream.ErrInvalidToken.
func GetJSON(ctx context.Context, client *http.Client, url, bearer string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("upstream: GET %q: %w: %w", url, err, upstream.ErrUnavailable)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("upstream: GET %q: reading body: %w: %w", url, err, upstream.ErrUnavailable)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("upstream: GET %q: %s: %w", url, resp.Status, upstream.ErrInvalidToken)
	default:
		return fmt.Errorf("upstream: GET %q: %s: %w", url, resp.Status, upstream.ErrUnavailable)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("upstream: GET %q: decoding: %w: %w", url, err, upstream.ErrUnavailable)
	}
	return nil
}
