package connectors_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"github.com/idbroker/broker/broker/connectors"
	"github.com/idbroker/broker/upstream"
)

// fakeConfig opens a fakeConnector and counts the opens, per id.
type fakeConfig struct {
	Setting string
	Fail    bool
	opens   *opens
}

type opens struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *opens) count(id string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[id]
}

func (c fakeConfig) Validate(string) error { return nil }

func (c fakeConfig) Open(_ context.Context, id string, _ upstream.Deps) (upstream.Connector, error) {
	if c.Fail {
		return nil, errors.New("does not open")
	}
	c.opens.mu.Lock()
	defer c.opens.mu.Unlock()
	c.opens.n[id]++
	return &fakeConnector{id: id, setting: c.Setting}, nil
}

type fakeConnector struct{ id, setting string }

func (c *fakeConnector) ID() string       { return c.id }
func (c *fakeConnector) TrustEmail() bool { return false }
func (c *fakeConnector) LoginURL(context.Context, upstream.LoginState) (string, error) {
	return "", nil
}
func (c *fakeConnector) HandleCallback(context.Context, upstream.LoginState, *http.Request) (upstream.Identity, error) {
	return upstream.Identity{}, nil
}

func TestReplace(t *testing.T) {
	o := &opens{n: map[string]int{}}
	cfg := func(setting string) fakeConfig { return fakeConfig{Setting: setting, opens: o} }
	deps := upstream.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s, err := connectors.Open(t.Context(), "https://broker.example", []connectors.Spec{{ID: "file", Name: "File", Config: cfg("f")}}, deps)
	if err != nil {
		t.Fatal(err)
	}
	s.Replace(t.Context(), []connectors.Spec{
		{ID: "a", Name: "A", Config: cfg("1")},
		{ID: "b", Name: "B", Org: "org-1", Config: cfg("1")},
		{ID: "file", Config: cfg("stolen")},                      // a configured id: left out
		{ID: "broken", Config: fakeConfig{Fail: true, opens: o}}, // does not open: left out
	})
	if s.Get("a") == nil || s.Get("b") == nil || s.Get("broken") != nil {
		t.Fatalf("after the first replace: a %v, b %v, broken %v", s.Get("a"), s.Get("b"), s.Get("broken"))
	}
	if got := s.Get("file").(*fakeConnector).setting; got != "f" {
		t.Errorf("the configured connector was replaced by a stored one: %q", got)
	}
	var buttons []string
	for _, b := range s.Buttons() {
		buttons = append(buttons, b.ID)
	}
	if len(buttons) != 2 || buttons[0] != "file" || buttons[1] != "a" {
		t.Errorf("buttons %q, want file and a (b is an organisation's)", buttons)
	}
	a := s.Get("a")

	// a unchanged but renamed, b's settings changed, and nothing else.
	s.Replace(t.Context(), []connectors.Spec{
		{ID: "a", Name: "A2", Config: cfg("1")},
		{ID: "b", Name: "B", Config: cfg("2")},
	})
	if s.Get("a") != a || o.count("a") != 1 {
		t.Errorf("an unchanged connector was opened again (%d opens)", o.count("a"))
	}
	if s.Name("a") != "A2" {
		t.Errorf("name after rename: %q", s.Name("a"))
	}
	if o.count("b") != 2 || s.Get("b").(*fakeConnector).setting != "2" {
		t.Errorf("a changed connector was not opened again")
	}

	s.Replace(t.Context(), nil)
	if s.Get("a") != nil || s.Get("b") != nil || s.Get("file") == nil {
		t.Error("deleted stored connectors remain, or the configured one went")
	}
	if !s.Configured("file") || s.Configured("a") {
		t.Error("Configured")
	}
}
