package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/legacy"
	"github.com/idbroker/broker/upstream/oidc"
	"github.com/idbroker/broker/upstream/otp"
	"github.com/idbroker/broker/upstream/workos"
)

// types lists every connector type, in the order error messages name them.
var types = []struct {
	name    string
	new     func() upstream.Config // a pointer to the zero typed Config
	secrets []Secret
}{
	{"otp", func() upstream.Config { return new(otp.Config) }, []Secret{{Path: "mailer.password"}}},
	{"oidc", func() upstream.Config { return new(oidc.Config) }, []Secret{{Path: "clientSecret", Required: true}}},
	{"auth0", func() upstream.Config { return new(oidc.Auth0Config) }, []Secret{{Path: "clientSecret", Required: true}}},
	{"azuread", func() upstream.Config { return new(oidc.AzureConfig) }, []Secret{{Path: "clientSecret", Required: true}}},
	{"workos", func() upstream.Config { return new(workos.Config) }, []Secret{{Path: "apiKey", Required: true}}},
	{"legacy", func() upstream.Config { return new(legacy.Config) }, []Secret{{Path: "clientSecret"}}},
}

// Secret is a setting of a connector type that holds a secret (a client
// secret, an API key, a password): what the broker keeps sealed at rest
// and never shows back.
type Secret struct {
	// Path is the setting's name, dotted for a nested one
	// ("mailer.password"), as YAML and JSON spell it.
	Path string
	// Required: a connector of the type cannot sign anyone in without it
	// (a connector stored at run time is always a confidential client of
	// its upstream).
	Required bool
}

// Secrets returns the settings of connector type typ that hold secrets;
// none for an unknown type.
func Secrets(typ string) []Secret {
	for _, t := range types {
		if t.name == typ {
			return slices.Clone(t.secrets)
		}
	}
	return nil
}

// Types returns the connector type names.
func Types() []string {
	out := make([]string, len(types))
	for i, t := range types {
		out[i] = t.name
	}
	return out
}

// New returns a pointer to the zero Config of connector type typ.
func New(typ string) (upstream.Config, error) {
	for _, t := range types {
		if t.name == typ {
			return t.new(), nil
		}
	}
	return nil, fmt.Errorf("type %q is not one of %s", typ, strings.Join(Types(), ", "))
}

// TypeOf returns the type name whose Config cfg is (a value or a pointer),
// or "" when it is none of them.
func TypeOf(cfg upstream.Config) string {
	rt := reflect.TypeOf(cfg)
	if rt != nil && rt.Kind() == reflect.Pointer {
		rt = rt.Elem()
	}
	for _, t := range types {
		if reflect.TypeOf(t.new()).Elem() == rt {
			return t.name
		}
	}
	return ""
}

// FieldError is a setting connector type Type does not take.
type FieldError struct {
	Type  string
	Field string
	// TakenBy are the types that do take it, if any.
	TakenBy []string
}

func (e *FieldError) Error() string {
	if len(e.TakenBy) == 0 {
		return fmt.Sprintf("%s is not a setting of %s connectors", e.Field, e.Type)
	}
	return fmt.Sprintf("%s is not a setting of %s connectors (only of %s)", e.Field, e.Type, strings.Join(e.TakenBy, ", "))
}

// settings are the top-level keys a typed Config takes.
func settings(cfg upstream.Config) []string {
	rt := reflect.TypeOf(cfg).Elem()
	var out []string
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

func fieldError(typ, field string) *FieldError {
	e := &FieldError{Type: typ, Field: field}
	for _, t := range types {
		if slices.Contains(settings(t.new()), field) {
			e.TakenBy = append(e.TakenBy, t.name)
		}
	}
	return e
}

// maxNodes bounds what an alias may expand to, so that nested aliases
// (the "billion laughs") cannot exhaust memory.
const maxNodes = 10000

// DecodeYAML decodes a connector's own settings, a YAML mapping (nil for
// none), into a new Config of type typ. A key the type does not take is a
// *FieldError, at any depth an error naming the key; so is a value of
// the wrong kind.
func DecodeYAML(typ string, settingsNode *yaml.Node) (upstream.Config, error) {
	cfg, err := New(typ)
	if err != nil {
		return nil, err
	}
	if settingsNode == nil {
		return cfg, nil
	}
	budget := maxNodes
	n, err := resolve(settingsNode, map[*yaml.Node]bool{}, &budget)
	if err != nil {
		return nil, err
	}
	if n.Kind != yaml.MappingNode {
		return nil, errors.New("settings are not a mapping")
	}
	known := settings(cfg)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; !slices.Contains(known, k) {
			return nil, fieldError(typ, k)
		}
	}
	if err := decodeStrict(n, cfg); err != nil {
		// Name the setting at fault: decode each alone.
		for i := 0; i+1 < len(n.Content); i += 2 {
			one := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: n.Content[i : i+2]}
			if err := decodeStrict(one, zero(typ)); err != nil {
				return nil, fmt.Errorf("%s: %w", n.Content[i].Value, err)
			}
		}
		return nil, err
	}
	return cfg, nil
}

// zero is a new Config of a known type.
func zero(typ string) upstream.Config {
	cfg, _ := New(typ)
	return cfg
}

// decodeStrict decodes n into cfg, refusing unknown keys at every depth.
func decodeStrict(n *yaml.Node, cfg upstream.Config) error {
	text, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		// The line numbers are the re-encoded text's, not the file's.
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
		msg = lineNumber.ReplaceAllString(msg, "")
		return errors.New(strings.ReplaceAll(msg, "\n  ", "; "))
	}
	return nil
}

var lineNumber = regexp.MustCompile(`line \d+: `)

// resolve copies n with every alias replaced by what it names, refusing
// cycles and copies larger than *budget nodes.
func resolve(n *yaml.Node, visiting map[*yaml.Node]bool, budget *int) (*yaml.Node, error) {
	if *budget--; *budget < 0 {
		return nil, errors.New("settings are too large once aliases are expanded")
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil || visiting[n.Alias] {
			return nil, errors.New("settings contain an alias to themselves")
		}
		visiting[n.Alias] = true
		defer delete(visiting, n.Alias)
		return resolve(n.Alias, visiting, budget)
	}
	c := *n
	c.Anchor = ""
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, child := range n.Content {
		r, err := resolve(child, visiting, budget)
		if err != nil {
			return nil, err
		}
		c.Content[i] = r
	}
	return &c, nil
}

// DecodeJSON decodes a connector's own settings, a JSON object as
// json.Marshal writes a Config, into a new Config of type typ. An
// unknown key is an error.
func DecodeJSON(typ string, data []byte) (upstream.Config, error) {
	cfg, err := New(typ)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}
