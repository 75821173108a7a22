package web

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trackerd/trackerd/store"
)

// indexRow is one issue of the index.
type indexRow struct {
	ID       int64
	Title    string
	Status   string
	Priority string
	Assignee string // display name; "" when unassigned
	Keywords []string
	Messages int
	Activity time.Time
	Closed   bool
}

// indexData is the index page.
type indexData struct {
	Query      listQuery
	Rows       []indexRow
	Total      int
	More       bool // a search with more results than Total, uncounted
	Page       int
	Pages      int
	Prev, Next string // page URLs, "" at the ends
	Error      string
	Statuses   []string
	Priorities []string
	Keywords   []string // the schema's, empty when any keyword is allowed
	Sorts      []sortOption
	APIURL     string
}

type sortOption struct{ Value, Label string }

var sortOptions = []sortOption{
	{"activity", "recent activity"}, {"-activity", "oldest activity"},
	{"-created", "newest"}, {"created", "oldest"},
	{"priority", "priority"}, {"-priority", "priority, least first"},
	{"id", "number"}, {"-id", "number, highest first"},
	{"title", "title"}, {"-title", "title, Z to A"},
}

func (s *Server) isClosed(status string) bool {
	_, ok := match(s.cfg.Schema.ClosedStatuses, status)
	return ok
}

// index is GET /: the issue list with filters, search, sort and paging.
func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	d := &indexData{Statuses: s.cfg.Schema.Statuses, Priorities: s.cfg.Schema.Priorities, Keywords: s.cfg.Schema.Keywords, Sorts: sortOptions}
	q, f, err := s.parseList(ctx, r.URL.Query())
	d.Query = q
	var bq *badQuery
	if errors.As(err, &bq) {
		d.Error = bq.msg
		s.render(w, r, "index", http.StatusBadRequest, page{Title: "Issues", Q: q.Q, Data: d})
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
	// The total is known without counting unless another page follows;
	// a search is not counted then (a common word would cost a pass over
	// every message it is in), and the pager says "more".
	total := f.Offset + len(issues)
	switch {
	case more && q.Q == "", f.Offset > 0 && len(issues) == 0:
		if total, err = s.st.CountIssues(ctx, f); err != nil {
			s.serverError(w, r, err)
			return
		}
	case more:
		d.More = true
	}
	ids := make([]int64, 0, len(issues))
	people := make([]int64, 0, len(issues))
	for _, is := range issues {
		ids = append(ids, is.ID)
		people = append(people, is.AssigneeID)
	}
	users, err := s.st.UsersByID(ctx, people)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	counts, err := s.st.MessageCounts(ctx, ids)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	for _, is := range issues {
		row := indexRow{ID: is.ID, Title: maskAddresses(is.Title), Status: is.Status, Priority: is.Priority,
			Keywords: maskAll(is.Keywords), Messages: counts[is.ID], Activity: is.Activity, Closed: s.isClosed(is.Status)}
		if is.AssigneeID != 0 {
			u := users[is.AssigneeID]
			row.Assignee = displayName(&u)
		}
		d.Rows = append(d.Rows, row)
	}
	d.Total, d.Page = total, q.Page
	d.Pages = max(1, (total+q.PerPage-1)/q.PerPage)
	if q.Page > 1 {
		d.Prev = q.url("/", q.Page-1)
	}
	if q.Page < d.Pages || d.More {
		d.Next = q.url("/", q.Page+1)
	}
	d.APIURL = q.url("/api/issues", q.Page)
	title := "Issues"
	if q.Q != "" {
		title = "Search: " + q.Q
	}
	s.render(w, r, "index", http.StatusOK, page{Title: title, Q: q.Q, Data: d})
}

// issueData is the issue page.
type issueData struct {
	ID         int64
	Title      string
	Status     string
	Priority   string
	Closed     bool
	Assignee   string
	Creator    string
	Keywords   []string
	Superseder int64
	NosyCount  int
	Created    time.Time
	Activity   time.Time
	Messages   []messageView
	Changes    []changeView
	ReplyTo    string // the address that comments on the issue
	APIURL     string
}

type messageView struct {
	ID       int64
	Author   string
	Date     time.Time
	Blocks   []block
	Full     []block // the full text, when quotes or a signature were cut
	Files    []fileView
	Changes  []changeView // changes this message made
	Empty    bool
	Opening  bool
	Position int
}

type fileView struct {
	ID    int64
	Name  string
	Type  string
	Size  int64
	URL   string
	Image bool
	Diff  *diffView
	// TooBig is set for a patch too large to show inline.
	TooBig bool
}

type changeView struct {
	At       time.Time
	Actor    string
	Property string
	Old, New string
	Message  int64
}

// pathIssue loads the issue the path names, for a page or a feed; when
// there is none it has answered (404, or 500 for the store's fault) and
// reports false.
func (s *Server) pathIssue(w http.ResponseWriter, r *http.Request) (*store.Issue, bool) {
	id, ok := pathID(r)
	if !ok {
		s.notFound(w, r, "There is no such issue.")
		return nil, false
	}
	is, err := s.st.Issue(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		s.notFound(w, r, fmt.Sprintf("There is no issue %d.", id))
		return nil, false
	}
	if err != nil {
		s.serverError(w, r, err)
		return nil, false
	}
	return is, true
}

// issue is GET /issue/N.
func (s *Server) issue(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	is, ok := s.pathIssue(w, r)
	if !ok {
		return
	}
	id := is.ID
	msgs, err := s.st.Messages(ctx, id)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	files, err := s.st.IssueFiles(ctx, id)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	changes, err := s.st.Changes(ctx, id)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	nosy, err := s.st.NosyCount(ctx, id)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	people := []int64{is.AssigneeID, is.CreatorID}
	for _, m := range msgs {
		people = append(people, m.AuthorID)
	}
	for _, c := range changes {
		people = append(people, c.ActorID)
	}
	users, err := s.st.UsersByID(ctx, people)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	name := func(id int64) string {
		if id == 0 {
			return ""
		}
		u, ok := users[id]
		if !ok {
			return "unknown"
		}
		return displayName(&u)
	}

	d := &issueData{ID: is.ID, Title: maskAddresses(is.Title), Status: is.Status, Priority: is.Priority,
		Closed: s.isClosed(is.Status), Assignee: name(is.AssigneeID), Creator: name(is.CreatorID),
		Keywords: maskAll(is.Keywords), Superseder: is.SupersederID, NosyCount: nosy, Created: is.Created, Activity: is.Activity,
		ReplyTo: s.subaddress(is.ID), APIURL: "/api/issues/" + strconv.FormatInt(is.ID, 10)}
	byMsg := map[int64][]fileView{}
	for _, f := range files {
		fv := fileView{ID: f.ID, Name: maskAddresses(f.Name), Type: f.Type, Size: f.Size, URL: fileURL(f.ID, maskAddresses(f.Name)), Image: safeImage(f.Type)}
		if isPatch(f.Name, f.Type) {
			if f.Size > maxDiffBytes {
				fv.TooBig = true
			} else {
				full, err := s.st.File(ctx, f.ID)
				if err != nil {
					s.serverError(w, r, err)
					return
				}
				if v, ok := parseDiff(strings.ToValidUTF8(string(full.Data), "\uFFFD")); ok {
					fv.Diff = &v
				}
			}
		}
		byMsg[f.MessageID] = append(byMsg[f.MessageID], fv)
	}
	changesByMsg := map[int64][]changeView{}
	for _, c := range changes {
		cv := changeView{At: c.At, Actor: name(c.ActorID), Property: c.Property, Old: maskAddresses(c.Old), New: maskAddresses(c.New), Message: c.MessageID}
		if cv.Actor == "" {
			cv.Actor = "the tracker"
		}
		d.Changes = append(d.Changes, cv)
		if c.MessageID != 0 {
			changesByMsg[c.MessageID] = append(changesByMsg[c.MessageID], cv)
		}
	}
	for i, m := range msgs {
		mv := messageView{ID: m.ID, Author: name(m.AuthorID), Date: m.Date, Blocks: textBlocks(m.Content),
			Files: byMsg[m.ID], Changes: changesByMsg[m.ID], Opening: i == 0, Position: i + 1}
		mv.Empty = len(mv.Blocks) == 0
		if full := strings.TrimSpace(m.FullText); full != "" && full != strings.TrimSpace(m.Content) {
			mv.Full = textBlocks(full)
		}
		d.Messages = append(d.Messages, mv)
	}
	s.render(w, r, "issue", http.StatusOK, page{Title: d.Title, FeedURL: "/issue/" + strconv.FormatInt(is.ID, 10) + "/feed.atom", Data: d})
}

// maskAll masks the addresses in every string of list (free keywords can
// be anything).
func maskAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = maskAddresses(s)
	}
	return out
}

// subaddress is the address that files mail into issue id: the tracker's
// own address, so showing it reveals no one's.
func (s *Server) subaddress(id int64) string {
	local, domain, ok := strings.Cut(s.cfg.Tracker.Address, "@")
	if !ok {
		return ""
	}
	return local + s.cfg.Tracker.SubaddressSeparator + strconv.FormatInt(id, 10) + "@" + domain
}

// fileURL is the download URL of a file: /file/ID/NAME.
func fileURL(id int64, name string) string {
	if name == "" {
		name = "attachment"
	}
	return "/file/" + strconv.FormatInt(id, 10) + "/" + url.PathEscape(name)
}

// safeImage reports whether a type is an image a browser may show inline:
// raster formats only (SVG can carry script).
func safeImage(typ string) bool {
	mt, _, err := mime.ParseMediaType(typ)
	if err != nil {
		return false
	}
	switch mt {
	case "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp":
		return true
	}
	return false
}

// file is GET /file/ID/NAME: the attachment with its stored type, as a
// download unless it is a safe image. NAME is only for the browser; the
// stored name is what Content-Disposition gives.
func (s *Server) file(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		s.notFound(w, r, "There is no such file.")
		return
	}
	f, err := s.st.File(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		s.notFound(w, r, fmt.Sprintf("There is no file %d.", id))
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	typ := "application/octet-stream"
	if mt, params, err := mime.ParseMediaType(f.Type); err == nil && strings.Contains(mt, "/") {
		typ = mime.FormatMediaType(mt, params)
		if typ == "" {
			typ = mt
		}
	}
	disposition := "attachment"
	if safeImage(typ) {
		disposition = "inline"
	}
	name := f.Name
	if name == "" || !utf8.ValidString(name) {
		name = "attachment"
	}
	cd := mime.FormatMediaType(disposition, map[string]string{"filename": name})
	if cd == "" {
		cd = disposition
	}
	h := w.Header()
	h.Set("Content-Security-Policy", fileCSP)
	h.Set("Cache-Control", "private, max-age=3600")
	h.Set("ETag", `"`+f.SHA256+`"`)
	if r.Header.Get("If-None-Match") == `"`+f.SHA256+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", typ)
	h.Set("Content-Disposition", cd)
	h.Set("Content-Length", strconv.FormatInt(int64(len(f.Data)), 10))
	if r.Method != http.MethodHead {
		w.Write(f.Data)
	}
}
