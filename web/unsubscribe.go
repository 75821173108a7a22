package web

import (
	"errors"
	"net/http"

	"github.com/trackerd/trackerd/store"
)

// /unsubscribe/TOKEN is the https link of every notification's
// List-Unsubscribe header (notify puts it there). GET only shows what
// will happen and a button: link scanners and previews fetch links, and
// must not unsubscribe anyone. POST — the button, or a mail client's
// RFC 8058 one-click POST (body "List-Unsubscribe=One-Click") — takes the
// person off the issue's nosy list, as mail to address+N-unsubscribe does.
// A token tied to no issue takes the person off every nosy list. POSTing
// again changes nothing and says so.

type unsubscribeData struct {
	Token   string
	Person  string
	IssueID int64
	Title   string
	OnList  bool // before a POST: whether there is anything to do
	Done    bool // after a POST
	Removed int  // lists the POST took the person off
}

// unsubscribeTarget resolves a token; ok is false when the page is already
// answered (not found, or an error).
func (s *Server) unsubscribeTarget(w http.ResponseWriter, r *http.Request) (d *unsubscribeData, userID int64, ok bool) {
	ctx := r.Context()
	tok := r.PathValue("token")
	userID, issueID, err := s.st.Token(ctx, tok)
	if errors.Is(err, store.ErrNotFound) {
		s.notFound(w, r, "This unsubscribe link is not valid. Copy the whole link from the mail, or write to the tracker with /unsubscribe as the first line of a reply.")
		return nil, 0, false
	}
	if err != nil {
		s.serverError(w, r, err)
		return nil, 0, false
	}
	u, err := s.st.UserByID(ctx, userID)
	if err != nil {
		s.serverError(w, r, err)
		return nil, 0, false
	}
	d = &unsubscribeData{Token: tok, Person: displayName(u), IssueID: issueID}
	if issueID != 0 {
		is, err := s.st.Issue(ctx, issueID)
		if err != nil {
			s.serverError(w, r, err)
			return nil, 0, false
		}
		d.Title = maskAddresses(is.Title)
	}
	return d, userID, true
}

// unsubscribeForm is GET /unsubscribe/TOKEN: it changes nothing.
func (s *Server) unsubscribeForm(w http.ResponseWriter, r *http.Request) {
	d, userID, ok := s.unsubscribeTarget(w, r)
	if !ok {
		return
	}
	d.OnList = true
	if d.IssueID != 0 {
		on, err := s.st.OnNosy(r.Context(), d.IssueID, userID)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		d.OnList = on
	}
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, "unsubscribe", http.StatusOK, page{Title: "Unsubscribe", Data: d})
}

// unsubscribe is POST /unsubscribe/TOKEN.
func (s *Server) unsubscribe(w http.ResponseWriter, r *http.Request) {
	d, userID, ok := s.unsubscribeTarget(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	if d.IssueID != 0 {
		removed, err := s.st.RemoveNosy(ctx, d.IssueID, userID)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		if removed {
			d.Removed = 1
		}
	} else {
		n, err := s.st.RemoveNosyEverywhere(ctx, userID)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		d.Removed = n
	}
	d.Done = true
	s.log.Info("unsubscribed", "user_id", userID, "issue_id", d.IssueID, "lists", d.Removed, "via", "web")
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, "unsubscribe", http.StatusOK, page{Title: "Unsubscribed", Data: d})
}
