package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/trackerd/trackerd/store"
)

// The JSON API: /api/issues and /api/issues/N answer with exactly the
// shapes `issue list -json` and `issue show -json` print (api.go).
//
// Addresses: to an anonymous client (a public tracker), every address in
// them (assignee, nosy, author, and any in a message's text) is masked as
// on the pages, "local@…" — same fields, same types. A client that sends
// valid basic auth credentials (always, when the view is not public) gets
// the full addresses.

// apiIssues is GET /api/issues: the index's filters and paging; the total
// is in X-Total-Count (absent for a search with more than one page: it is
// not counted) and the neighbouring pages in a Link header (RFC 8288,
// rel="next"/"prev").
func (s *Server) apiIssues(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q, f, err := s.parseList(ctx, r.URL.Query())
	var bq *badQuery
	if errors.As(err, &bq) {
		s.jsonError(w, http.StatusBadRequest, bq.msg)
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	issues, more, err := s.st.IssuePage(ctx, f)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	total := f.Offset + len(issues)
	counted := !more
	if more && q.Q == "" || f.Offset > 0 && len(issues) == 0 && q.Q == "" {
		if total, err = s.st.CountIssues(ctx, f); err != nil {
			s.serverError(w, r, err)
			return
		}
		counted = true
	}
	out, err := LoadIssues(ctx, s.st, issues)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if viewer(r) == nil {
		for i := range out {
			maskIssue(&out[i])
		}
	}
	var links []string
	if q.Page > 1 {
		links = append(links, `<`+q.url("/api/issues", q.Page-1)+`>; rel="prev"`)
	}
	if more {
		links = append(links, `<`+q.url("/api/issues", q.Page+1)+`>; rel="next"`)
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	if counted {
		w.Header().Set("X-Total-Count", strconv.Itoa(total))
	}
	s.writeJSON(w, r, http.StatusOK, out)
}

// apiIssue is GET /api/issues/N.
func (s *Server) apiIssue(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, ok := pathID(r)
	if !ok {
		s.jsonError(w, http.StatusNotFound, "no such issue")
		return
	}
	is, err := s.st.Issue(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		s.jsonError(w, http.StatusNotFound, fmt.Sprintf("no issue %d", id))
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d, err := LoadIssueDetail(ctx, s.st, is)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if viewer(r) == nil {
		maskIssue(&d.Issue)
		for i := range d.Messages {
			m := &d.Messages[i]
			m.Author = maskAddress(m.Author)
			m.Content = maskAddresses(m.Content)
			for j := range m.Files {
				m.Files[j].Name = maskAddresses(m.Files[j].Name)
			}
		}
	}
	s.writeJSON(w, r, http.StatusOK, d)
}

// maskIssue masks the addresses of an issue for an anonymous client.
func maskIssue(j *Issue) {
	j.Title = maskAddresses(j.Title)
	j.Keywords = maskAll(j.Keywords)
	if j.Assignee != nil {
		a := maskAddress(*j.Assignee)
		j.Assignee = &a
	}
	for i, n := range j.Nosy {
		j.Nosy[i] = maskAddress(n)
	}
}

func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		s.serverError(w, r, fmt.Errorf("json: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(append(b, '\n'))
	}
}

// jsonError answers an API request with {"error": msg}.
func (s *Server) jsonError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
