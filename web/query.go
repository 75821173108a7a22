package web

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/trackerd/trackerd/store"
)

// The index's query parameters, shared by / and /api/issues:
//
//	status    "open" (the default), "closed", "all", or status names separated by commas
//	priority  a priority name
//	keyword   a keyword
//	assignee  a username, or "-" for unassigned issues
//	q         full-text search: every word must occur in the title or a message
//	sort      activity (default, newest first), created, id, priority, title; a leading "-" reverses
//	page      1-based page number
//	per_page  issues per page, 1 to maxPerPage (default defaultPerPage)

const (
	defaultPerPage = 50
	maxPerPage     = 200
)

var sortKeys = []string{"activity", "-activity", "created", "-created", "id", "-id", "priority", "-priority", "title", "-title"}

// listQuery is a parsed, canonical index query.
type listQuery struct {
	Status, Priority, Keyword, Assignee, Q, Sort string
	Page, PerPage                                int
}

// badQuery is a query parameter we cannot use; its text is shown.
type badQuery struct{ msg string }

func (e *badQuery) Error() string { return e.msg }

func badQueryf(format string, args ...any) error { return &badQuery{fmt.Sprintf(format, args...)} }

// match returns the name in names equal to v without regard to case.
func match(names []string, v string) (string, bool) {
	for _, n := range names {
		if strings.EqualFold(n, v) {
			return n, true
		}
	}
	return "", false
}

// parseList reads the index parameters of v into a store filter.
func (s *Server) parseList(ctx context.Context, v url.Values) (listQuery, store.IssueFilter, error) {
	var q listQuery
	f := store.IssueFilter{PriorityOrder: s.cfg.Schema.Priorities}

	q.Status = strings.TrimSpace(v.Get("status"))
	switch strings.ToLower(q.Status) {
	case "", "open":
		q.Status, f.Statuses = "open", s.open
		if len(f.Statuses) == 0 {
			f.Statuses = []string{"\x00none"}
		}
	case "closed":
		q.Status, f.Statuses = "closed", s.cfg.Schema.ClosedStatuses
	case "all":
		q.Status = "all"
	default:
		var names []string
		for _, n := range strings.Split(q.Status, ",") {
			n = strings.TrimSpace(n)
			if n == "" {
				continue
			}
			name, ok := match(s.cfg.Schema.Statuses, n)
			if !ok {
				return q, f, badQueryf("unknown status %q (want open, closed, all, or one of %s)", n, strings.Join(s.cfg.Schema.Statuses, ", "))
			}
			names = append(names, name)
		}
		q.Status, f.Statuses = strings.Join(names, ","), names
		if len(names) == 0 {
			q.Status, f.Statuses = "all", nil
		}
	}

	if p := strings.TrimSpace(v.Get("priority")); p != "" {
		name, ok := match(s.cfg.Schema.Priorities, p)
		if !ok {
			return q, f, badQueryf("unknown priority %q (want one of %s)", p, strings.Join(s.cfg.Schema.Priorities, ", "))
		}
		q.Priority, f.Priority = name, name
	}
	if k := strings.TrimSpace(v.Get("keyword")); k != "" {
		if len(s.cfg.Schema.Keywords) > 0 {
			name, ok := match(s.cfg.Schema.Keywords, k)
			if !ok {
				return q, f, badQueryf("unknown keyword %q", k)
			}
			k = name
		}
		q.Keyword, f.Keyword = k, k
	}
	if a := strings.TrimSpace(v.Get("assignee")); a != "" {
		if a == "-" {
			q.Assignee, f.AssigneeID = "-", -1
		} else {
			u, err := s.st.UserByUsername(ctx, a)
			if errors.Is(err, store.ErrNotFound) {
				return q, f, badQueryf("there is no user %q", maskAddresses(a))
			}
			if err != nil {
				return q, f, err
			}
			q.Assignee, f.AssigneeID = u.Username, u.ID
		}
	}
	q.Q = strings.TrimSpace(v.Get("q"))
	f.Query = q.Q

	q.Sort = strings.TrimSpace(v.Get("sort"))
	if q.Sort == "" {
		q.Sort = "activity"
	}
	if _, ok := match(sortKeys, q.Sort); !ok {
		return q, f, badQueryf("unknown sort %q (want %s)", q.Sort, strings.Join(sortKeys, ", "))
	}
	q.Sort = strings.ToLower(q.Sort)
	f.Sort = q.Sort

	var err error
	if q.Page, err = intParam(v, "page", 1, 1, 1<<20); err != nil {
		return q, f, err
	}
	if q.PerPage, err = intParam(v, "per_page", defaultPerPage, 1, maxPerPage); err != nil {
		return q, f, err
	}
	f.Limit, f.Offset = q.PerPage, (q.Page-1)*q.PerPage
	return q, f, nil
}

func intParam(v url.Values, name string, def, lo, hi int) (int, error) {
	s := strings.TrimSpace(v.Get(name))
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, badQueryf("%s must be a number from %d to %d", name, lo, hi)
	}
	return n, nil
}

// values is q as URL parameters, without defaults, on page p.
func (q listQuery) values(p int) url.Values {
	v := url.Values{}
	set := func(k, val, def string) {
		if val != "" && val != def {
			v.Set(k, val)
		}
	}
	set("status", q.Status, "open")
	set("priority", q.Priority, "")
	set("keyword", q.Keyword, "")
	set("assignee", q.Assignee, "")
	set("q", q.Q, "")
	set("sort", q.Sort, "activity")
	if p > 1 {
		v.Set("page", strconv.Itoa(p))
	}
	if q.PerPage != defaultPerPage {
		v.Set("per_page", strconv.Itoa(q.PerPage))
	}
	return v
}

// url is the index URL (path "/" or "/api/issues") of q on page p.
func (q listQuery) url(path string, p int) string {
	if e := q.values(p).Encode(); e != "" {
		return path + "?" + e
	}
	return path
}
