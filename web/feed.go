package web

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Atom feeds (RFC 4287): /feed.atom has the newest messages of every
// issue (a new issue is its first message), /issue/N/feed.atom one
// issue's. Links and ids are absolute, built on tracker.web_url (never on
// the request's Host header).

const feedEntries = 50

type atomFeed struct {
	XMLName   xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	ID        string      `xml:"id"`
	Title     string      `xml:"title"`
	Updated   string      `xml:"updated"`
	Author    atomPerson  `xml:"author"`
	Links     []atomLink  `xml:"link"`
	Generator string      `xml:"generator"`
	Entries   []atomEntry `xml:"entry"`
}

type atomPerson struct {
	Name string `xml:"name"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr"`
	Type string `xml:"type,attr,omitempty"`
	Href string `xml:"href,attr"`
}

type atomText struct {
	Type string `xml:"type,attr"`
	Body string `xml:",chardata"`
}

type atomEntry struct {
	ID        string     `xml:"id"`
	Title     string     `xml:"title"`
	Updated   string     `xml:"updated"`
	Published string     `xml:"published"`
	Author    atomPerson `xml:"author"`
	Links     []atomLink `xml:"link"`
	Content   atomText   `xml:"content"`
}

func atomTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// feed is GET /feed.atom.
func (s *Server) feed(w http.ResponseWriter, r *http.Request) {
	base := s.cfg.Tracker.WebURL
	f := &atomFeed{
		ID:    base + "feed.atom",
		Title: s.cfg.Tracker.Name + ": new issues and messages",
		Links: []atomLink{{Rel: "self", Type: "application/atom+xml", Href: base + "feed.atom"}, {Rel: "alternate", Type: "text/html", Href: base}},
	}
	s.writeFeed(w, r, f, 0, time.Time{})
}

// issueFeed is GET /issue/N/feed.atom.
func (s *Server) issueFeed(w http.ResponseWriter, r *http.Request) {
	is, ok := s.pathIssue(w, r)
	if !ok {
		return
	}
	id := is.ID
	base := s.cfg.Tracker.WebURL
	page := base + "issue/" + strconv.FormatInt(id, 10)
	f := &atomFeed{
		ID:    page + "/feed.atom",
		Title: fmt.Sprintf("issue%d: %s", id, maskAddresses(is.Title)),
		Links: []atomLink{{Rel: "self", Type: "application/atom+xml", Href: page + "/feed.atom"}, {Rel: "alternate", Type: "text/html", Href: page}},
	}
	s.writeFeed(w, r, f, id, is.Activity)
}

// writeFeed fills f with the newest messages (of issue issueID, or of all
// issues for 0) and writes it. updated is the feed's time when it has no
// entries.
func (s *Server) writeFeed(w http.ResponseWriter, r *http.Request, f *atomFeed, issueID int64, updated time.Time) {
	ctx := r.Context()
	msgs, err := s.st.RecentMessages(ctx, issueID, feedEntries)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	ids := make([]int64, 0, len(msgs))
	for _, m := range msgs {
		ids = append(ids, m.AuthorID)
	}
	users, err := s.st.UsersByID(ctx, ids)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	base := s.cfg.Tracker.WebURL
	f.Author = atomPerson{Name: s.cfg.Tracker.Name}
	f.Generator = "trackerd"
	for _, m := range msgs {
		u := users[m.AuthorID]
		author := displayName(&u)
		title := maskAddresses(m.IssueTitle)
		if m.First {
			title = fmt.Sprintf("New issue%d: %s", m.IssueID, title)
		} else {
			title = fmt.Sprintf("Re: issue%d: %s (%s)", m.IssueID, title, author)
		}
		link := base + "issue/" + strconv.FormatInt(m.IssueID, 10) + "#msg" + strconv.FormatInt(m.ID, 10)
		f.Entries = append(f.Entries, atomEntry{
			ID:        link,
			Title:     title,
			Updated:   atomTime(m.Date),
			Published: atomTime(m.Date),
			Author:    atomPerson{Name: author},
			Links:     []atomLink{{Rel: "alternate", Type: "text/html", Href: link}},
			Content:   atomText{Type: "text", Body: maskAddresses(m.Content)},
		})
		if m.Date.After(updated) {
			updated = m.Date
		}
	}
	if updated.IsZero() {
		updated = time.Unix(0, 0)
	}
	f.Updated = atomTime(updated)
	out, err := xml.MarshalIndent(f, "", " ")
	if err != nil {
		s.serverError(w, r, fmt.Errorf("feed: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/atom+xml; charset=utf-8")
	if r.Method == http.MethodHead {
		return
	}
	w.Write([]byte(xml.Header))
	w.Write(out)
	w.Write([]byte("\n"))
}
