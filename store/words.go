package store

import (
	"context"
	"database/sql"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/lib/pq"
)

// A word, for search, is a run of letters and digits, case-folded: the
// same rule for the query (searchWords) and, on PostgreSQL, for the index
// (issue_words, migration 0012). SQLite's FTS5 tokenizer (unicode61)
// splits and folds text the same way (TestIssuePage holds both stores to
// it). PostgreSQL's own parser is not used: it kept an e-mail address or
// a URL as one token (so "example" did not find "bob@example.com"), and
// it cost PostgreSQL ≈145 µs of CPU per smtp-source mail.

const (
	// indexedRunes is how much of a message PostgreSQL's index holds, in
	// characters: an issue's lexemes must stay under tsvector's 1 MB.
	indexedRunes = 100000
	// maxLexemeBytes is tsvector's longest lexeme; longer words are not
	// indexed (PostgreSQL's to_tsvector skipped them too).
	maxLexemeBytes = 2047
)

// asciiWord marks the ASCII letters and digits.
var asciiWord = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
	}
	return t
}()

// isWordRune reports whether r belongs in a word.
func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiWord[r]
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// forWords calls fn with each word of text in order, case-folded. The
// string fn gets is only valid during the call (it may be a scratch
// buffer's): fn copies what it keeps.
func forWords(text string, fn func(w string)) {
	var buf []byte // an ASCII word with capitals, folded
	start := -1
	ascii, lower := true, true // of text[start:i]
	emit := func(w string) {
		switch {
		case lower:
		case ascii:
			buf = append(buf[:0], w...)
			for k, c := range buf {
				if 'A' <= c && c <= 'Z' {
					buf[k] = c + 'a' - 'A'
				}
			}
			w = unsafe.String(unsafe.SliceData(buf), len(buf))
		default:
			w = strings.Map(foldRune, w)
		}
		fn(w)
	}
	for i := 0; i < len(text); {
		c := text[i]
		r, size := rune(c), 1
		if c >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(text[i:])
		}
		if isWordRune(r) {
			if start < 0 {
				start, ascii, lower = i, true, true
			}
			if c >= utf8.RuneSelf {
				ascii, lower = false, false
			} else if 'A' <= c && c <= 'Z' {
				lower = false
			}
		} else if start >= 0 {
			emit(text[start:i])
			start = -1
		}
		i += size
	}
	if start >= 0 {
		emit(text[start:])
	}
}

// foldRune folds r's case as FTS5 does: to lower case, and the lower-case
// variants together (final ς is σ, ſ is s).
func foldRune(r rune) rune { return unicode.ToLower(unicode.ToUpper(r)) }

// wordSet collects the distinct words of texts for issue_words.
type wordSet map[string]struct{}

// add adds the words of text's first indexedRunes characters.
func (s wordSet) add(text string) {
	forWords(firstRunes(text, indexedRunes), func(w string) {
		if len(w) > maxLexemeBytes {
			return
		}
		if _, ok := s[w]; !ok {
			s[strings.Clone(w)] = struct{}{} // the key outlives text
		}
	})
}

// textWords is the tsvector argument for texts (titles, message
// contents): their distinct words.
func textWords(texts ...string) string {
	s := wordSet{}
	for _, t := range texts {
		s.add(t)
	}
	return s.tsvector()
}

// firstRunes returns s's first n characters.
func firstRunes(s string, n int) string {
	if len(s) <= n { // no more characters than bytes
		return s
	}
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// tsquery returns the tsquery, in PostgreSQL's input syntax, that holds
// when every one of words (from searchWords) is among an issue's lexemes,
// and false when one of them is too long to have been indexed. The words
// are quoted as lexemes: no parser sees them again.
func tsquery(words []string) (string, bool) {
	var b strings.Builder
	for k, w := range words {
		if len(w) > maxLexemeBytes {
			return "", false
		}
		if k > 0 {
			b.WriteString(" & ")
		}
		quoteLexeme(&b, w)
	}
	return b.String(), len(words) > 0
}

// tsvector returns the set in tsvector's input syntax (PostgreSQL sorts
// the lexemes).
func (s wordSet) tsvector() string {
	var b strings.Builder
	for w := range s {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		quoteLexeme(&b, w)
	}
	return b.String()
}

// quoteLexeme writes w quoted as one lexeme of a tsvector or tsquery.
// (Words hold neither quotes nor backslashes; the escapes are for safety.)
func quoteLexeme(b *strings.Builder, w string) {
	b.WriteByte('\'')
	for _, r := range w {
		if r == '\'' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('\'')
}

// reindexIssue rewrites issue id's row of issue_words (PostgreSQL) from
// its title and all its messages: after a change of title, which takes
// the old title's words out.
func (c *conn) reindexIssue(ctx context.Context, id int64, title string) error {
	s := wordSet{}
	s.add(title)
	err := c.each(ctx, `SELECT content FROM messages WHERE issue_id = $1`, []any{id}, func(rows *sql.Rows) error {
		var content string
		if err := rows.Scan(&content); err != nil {
			return err
		}
		s.add(content)
		return nil
	})
	if err != nil {
		return err
	}
	_, err = c.exec(ctx, `INSERT INTO issue_words (issue_id, words) VALUES ($1, $2::tsvector)
		ON CONFLICT (issue_id) DO UPDATE SET words = EXCLUDED.words`, id, s.tsvector())
	return err
}

// reindexAll fills the empty issue_words of migration 0012, a thousand
// issues at a time, then indexes it: it runs in the migration's
// transaction, after the file.
func reindexAll(ctx context.Context, tx *sql.Tx) error {
	const batch = 1000
	for last := int64(0); ; {
		sets := map[int64]wordSet{}
		var ids []int64
		err := eachText(ctx, tx, `SELECT id, title FROM issues WHERE id > $1 ORDER BY id LIMIT $2`, []any{last, batch}, func(id int64, title string) {
			sets[id] = wordSet{}
			sets[id].add(title)
			ids = append(ids, id)
		})
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			break
		}
		first := ids[0]
		last = ids[len(ids)-1]
		// Every message of an issue in [first, last] is of this batch.
		err = eachText(ctx, tx, `SELECT issue_id, content FROM messages WHERE issue_id BETWEEN $1 AND $2`, []any{first, last}, func(id int64, content string) {
			if set := sets[id]; set != nil { // (a message's issue exists: foreign key)
				set.add(content)
			}
		})
		if err != nil {
			return err
		}
		vectors := make([]string, len(ids))
		for k, id := range ids {
			vectors[k] = sets[id].tsvector()
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO issue_words (issue_id, words)
			SELECT u.id, u.words::tsvector FROM unnest($1::bigint[], $2::text[]) AS u(id, words)`,
			pq.Int64Array(ids), pq.StringArray(vectors)); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `CREATE INDEX issue_words_fts ON issue_words USING GIN (words); ANALYZE issue_words`)
	return err
}

// eachText calls fn with the two columns, an id and a text, of every row
// of query.
func eachText(ctx context.Context, tx *sql.Tx, query string, args []any, fn func(id int64, text string)) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var text string
		if err := rows.Scan(&id, &text); err != nil {
			return err
		}
		fn(id, text)
	}
	return rows.Err()
}
