// Package docs holds the tests that keep the documentation true: every
// YAML block of README.md and docs/**/*.md loads through
// broker.ParseConfig, and every shell example of the README that needs no
// outside service runs against a broker (see the tests for the info
// strings that mark blocks).
package docs

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// Block is one fenced code block of a Markdown file.
type Block struct {
	File string
	Line int    // of the opening fence
	Lang string // the info string's first word: yaml, sh, json
	// Flags are the info string's other words (no-test, fragment,
	// serve, file=NAME).
	Flags []string
	Text  string
}

// Flag reports whether the block's info string has flag, and the value
// after "flag=" when it has one.
func (b Block) Flag(flag string) (string, bool) {
	for _, f := range b.Flags {
		if f == flag {
			return "", true
		}
		if v, ok := strings.CutPrefix(f, flag+"="); ok {
			return v, true
		}
	}
	return "", false
}

// Blocks returns the fenced blocks of a Markdown file, indented ones (in
// list items) included, with the indentation removed.
func Blocks(path string) ([]Block, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		out    []Block
		cur    *Block
		indent string
		body   strings.Builder
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		if cur == nil {
			if info, ok := strings.CutPrefix(trimmed, "```"); ok {
				words := strings.Fields(info)
				cur = &Block{File: path, Line: n}
				if len(words) > 0 {
					cur.Lang, cur.Flags = words[0], words[1:]
				}
				indent = line[:len(line)-len(trimmed)]
				body.Reset()
			}
			continue
		}
		if strings.TrimSpace(line) == "```" {
			cur.Text = body.String()
			out = append(out, *cur)
			cur = nil
			continue
		}
		body.WriteString(strings.TrimPrefix(line, indent))
		body.WriteByte('\n')
	}
	return out, sc.Err()
}

// Files are README.md and every Markdown file under docs/, relative to
// the repository root.
func Files(root string) ([]string, error) {
	files := []string{filepath.Join(root, "README.md")}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return err
	})
	return files, err
}
