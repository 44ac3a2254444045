package docs

import (
	"strings"
	"testing"

	"github.com/idbroker/broker/broker"
)

// Every ```yaml block of the README and docs/ is a configuration that
// broker.ParseConfig loads, with ${NAME} set to a placeholder. A block
// that is part of a configuration and not a whole one says so in its info
// string:
//
//   - ```yaml connector: one or more entries of connectors (a list item
//     or a mapping), loaded inside "connectors:";
//   - ```yaml client: the same for clients;
//   - ```yaml no-test REASON…: not loaded, for the reason given (which
//     the test requires, and which should be rare).
func TestDocs_EveryYAMLBlockLoads(t *testing.T) {
	files, err := Files("../..")
	if err != nil {
		t.Fatal(err)
	}
	env := func(name string) (string, bool) { return "value-of-" + name, true }
	loaded := 0
	for _, f := range files {
		blocks, err := Blocks(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			if b.Lang != "yaml" && b.Lang != "yml" {
				continue
			}
			text := b.Text
			switch {
			case hasFlag(b, "no-test"):
				if len(b.Flags) < 2 {
					t.Errorf("%s:%d: a yaml no-test block must say why after no-test", b.File, b.Line)
				}
				t.Logf("%s:%d: not loaded: %s", b.File, b.Line, strings.Join(b.Flags[1:], " "))
				continue
			case hasFlag(b, "connector"):
				text = wrap("connectors", text)
			case hasFlag(b, "client"):
				text = wrap("clients", text)
			}
			if _, err := broker.ParseConfig([]byte(text), env); err != nil {
				t.Errorf("%s:%d: the yaml block does not load: %v", b.File, b.Line, err)
			}
			loaded++
		}
	}
	if loaded < 5 {
		t.Errorf("only %d yaml blocks loaded: is the extraction broken?", loaded)
	}
}

func hasFlag(b Block, flag string) bool {
	_, ok := b.Flag(flag)
	return ok
}

// wrap puts list entries under key, making one entry of a bare mapping.
func wrap(key, text string) string {
	if !strings.HasPrefix(strings.TrimSpace(text), "-") {
		text = "- " + strings.ReplaceAll(strings.TrimRight(text, "\n"), "\n", "\n  ") + "\n"
	}
	return key + ":\n" + indentLines(text, "  ")
}

func indentLines(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

func TestWrap(t *testing.T) {
	got := wrap("connectors", "id: otp\ntype: otp\n")
	if want := "connectors:\n  - id: otp\n    type: otp\n"; got != want {
		t.Errorf("wrap mapping: %q, want %q", got, want)
	}
	got = wrap("clients", "- { id: a, public: true }\n")
	if want := "clients:\n  - { id: a, public: true }\n"; got != want {
		t.Errorf("wrap list: %q, want %q", got, want)
	}
}
