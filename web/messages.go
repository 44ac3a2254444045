package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/text/language"
)

//go:embed messages/*.json
var messageFS embed.FS

// DefaultLanguage is what a page falls back to: every message exists in
// it, and a key missing from another language is shown in it.
const DefaultLanguage = "en"

// catalogs maps a language to its messages (key → text). Message text is
// trusted HTML written with the templates; {0}, {1}… are replaced by
// arguments, which are always escaped.
var (
	catalogs    map[string]map[string]string
	englishKeys map[string]string // English text → key, to translate callers' sentences
	matcher     language.Matcher
	languages   []string
	loadOnce    sync.Once
	loadErr     error
)

func loadCatalogs() error {
	loadOnce.Do(func() { loadErr = parseCatalogs() })
	return loadErr
}

func parseCatalogs() error {
	entries, err := messageFS.ReadDir("messages")
	if err != nil {
		return fmt.Errorf("web: messages: %w", err)
	}
	catalogs = map[string]map[string]string{}
	for _, e := range entries {
		lang := strings.TrimSuffix(e.Name(), ".json")
		raw, err := messageFS.ReadFile(path.Join("messages", e.Name()))
		if err != nil {
			return fmt.Errorf("web: messages %s: %w", e.Name(), err)
		}
		m := map[string]string{}
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("web: messages %s: %w", e.Name(), err)
		}
		if _, err := language.Parse(lang); err != nil {
			return fmt.Errorf("web: messages %s: %q is not a language tag", e.Name(), lang)
		}
		catalogs[lang] = m
	}
	if _, ok := catalogs[DefaultLanguage]; !ok {
		return fmt.Errorf("web: messages/%s.json is missing", DefaultLanguage)
	}
	// The default language first: the matcher falls back to it.
	languages = []string{DefaultLanguage}
	for lang := range catalogs {
		if lang != DefaultLanguage {
			languages = append(languages, lang)
		}
	}
	slices.Sort(languages[1:])
	tags := make([]language.Tag, len(languages))
	for i, l := range languages {
		tags[i] = language.MustParse(l)
	}
	matcher = language.NewMatcher(tags)
	englishKeys = map[string]string{}
	for k, v := range catalogs[DefaultLanguage] {
		englishKeys[v] = k
	}
	return nil
}

// Languages lists the languages pages can be shown in, DefaultLanguage first.
func Languages() []string {
	if err := loadCatalogs(); err != nil {
		return []string{DefaultLanguage}
	}
	return slices.Clone(languages)
}

// Negotiate picks the page language: the first of uiLocales (the OpenID
// Connect ui_locales, in order of preference) that pages exist in, else
// the best match for the Accept-Language header, else DefaultLanguage.
func Negotiate(uiLocales []string, acceptLanguage string) string {
	if err := loadCatalogs(); err != nil {
		return DefaultLanguage
	}
	for _, l := range uiLocales {
		tag, err := language.Parse(l)
		if err != nil {
			continue
		}
		if _, idx, conf := matcher.Match(tag); conf >= language.High {
			return languages[idx]
		}
	}
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return DefaultLanguage
	}
	_, idx, conf := matcher.Match(tags...)
	if conf == language.No {
		return DefaultLanguage
	}
	return languages[idx]
}

// RequestLanguage picks the language of a page answering r: Negotiate
// over uiLocales (those of the sign-in, when there is one), else the
// request's own ui_locales parameter, and its Accept-Language header.
func RequestLanguage(r *http.Request, uiLocales []string) string {
	if len(uiLocales) == 0 {
		uiLocales = strings.Fields(r.URL.Query().Get("ui_locales"))
	}
	return Negotiate(uiLocales, r.Header.Get("Accept-Language"))
}

// T returns the message key in lang as plain text, with {0}, {1}…
// replaced by args. A key missing in lang falls back to English; a key
// missing there too is returned as it is.
func T(lang, key string, args ...any) string {
	if err := loadCatalogs(); err != nil {
		return key
	}
	return message(lang, key, false, args...)
}

func message(lang, key string, escape bool, args ...any) string {
	msg, ok := catalogs[lang][key]
	if !ok {
		if msg, ok = catalogs[DefaultLanguage][key]; !ok {
			return key
		}
	}
	for i, a := range args {
		s := fmt.Sprint(a)
		if escape {
			s = template.HTMLEscapeString(s)
		}
		msg = strings.ReplaceAll(msg, "{"+strconv.Itoa(i)+"}", s)
	}
	return msg
}

// translateText translates an English sentence a caller passed in (an
// error page's title, a field error) when it is one of the catalog's
// messages; anything else is shown as it came.
func translateText(lang, english string) string {
	if key, ok := englishKeys[english]; ok {
		if msg, ok := catalogs[lang][key]; ok {
			return msg
		}
	}
	return english
}
