package store

import (
	"maps"

	"slices"
	"strings"
	"testing"
)

func TestForWords(t *testing.T) {
	for text, want := range map[string][]string{
		"":                              nil,
		"Printer jams, DAILY!":          {"printer", "jams", "daily"},
		"ask bob@example.com":           {"ask", "bob", "example", "com"},
		"https://example.org/a_b?c=1.5": {"https", "example", "org", "a", "b", "c", "1", "5"},
		"ÜBER Größe café":               {"über", "größe", "café"},
		"ΣΊΣΥΦΟΣ ſo":                    {"σίσυφοσ", "so"},
		"e-mail it's x2":                {"e", "mail", "it", "s", "x2"},
		"日本語のテスト":                       {"日本語のテスト"},
	} {
		var got []string
		forWords(text, func(w string) { got = append(got, strings.Clone(w)) })
		if !slices.Equal(got, want) {
			t.Errorf("forWords(%q) = %q, want %q", text, got, want)
		}
	}
	if got := searchWords("a b a A c"); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("searchWords repeats: %q", got)
	}
}

func TestWordSet(t *testing.T) {
	long := strings.Repeat("x", maxLexemeBytes+1)
	s := wordSet{}
	s.add("one Two " + long + " two")
	// "four" ends at character 100,000 (byte 199,999); "five" is beyond.
	s.add(strings.Repeat("é", indexedRunes-5) + " four five")
	if got := slices.Sorted(maps.Keys(s)); !slices.Equal(got, []string{"four", "one", "two"}) {
		t.Errorf("words %.40q", got)
	}
	if got := firstRunes("héllo", 2); got != "hé" {
		t.Errorf("firstRunes = %q", got)
	}
	if q, ok := tsquery([]string{"printer", "größe", "it's"}); !ok || q != `'printer' & 'größe' & 'it\'s'` {
		t.Errorf("tsquery = %q, %v", q, ok)
	}
	if _, ok := tsquery([]string{"a", long}); ok {
		t.Error("tsquery of a word too long to be indexed: ok")
	}
	if v := (wordSet{"a": {}}).tsvector(); v != `'a'` {
		t.Errorf("tsvector = %q", v)
	}
}

// BenchmarkWordSet: the words of smtp-source's 4 KB body, which
// PostgreSQL's to_tsvector took ≈0.5 ms for.
func BenchmarkWordSet(b *testing.B) {
	body := strings.Repeat("La de da de da 1.\r\n", 228)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		s := wordSet{}
		s.add(body)
		_ = s.tsvector()
	}
}
