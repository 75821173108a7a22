// Package web is trackerd's read-only view of the tracker: HTML pages, Atom
// feeds, the JSON API and one-click unsubscribe.
//
// This file holds the JSON shapes of DESIGN §3. They are a contract read by
// scripts and tests: `trackerd issue show -json`, `issue list -json`,
// `user list -json` and the /api routes all print these types, so a field
// renamed here breaks every consumer.
package web

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trackerd/trackerd/store"
)

// Issue is one issue as `issue list -json` and /api/issues print it.
type Issue struct {
	ID       int64     `json:"id"`
	Title    string    `json:"title"`
	Status   string    `json:"status"`
	Priority string    `json:"priority"`
	Assignee *string   `json:"assignee"` // address, or null when unassigned
	Keywords []string  `json:"keywords"` // never null
	Nosy     []string  `json:"nosy"`     // addresses, never null
	Created  time.Time `json:"created"`
	Activity time.Time `json:"activity"`
}

// IssueDetail is one issue with its messages, as `issue show -json` and
// /api/issues/ID print it.
type IssueDetail struct {
	Issue
	Messages []Message `json:"messages"` // oldest first, never null
}

// Message is one message of an issue.
type Message struct {
	ID        int64     `json:"id"`
	Author    string    `json:"author"` // the author's primary address
	Date      time.Time `json:"date"`
	MessageID string    `json:"message_id"`
	InReplyTo string    `json:"in_reply_to"`
	Content   string    `json:"content"`
	Files     []File    `json:"files"` // never null
}

// File is an attachment of a message, without its bytes.
type File struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Size int64  `json:"size"`
}

// User is one user as `user list -json` prints it.
type User struct {
	ID        int64    `json:"id"`
	Username  string   `json:"username"`
	RealName  string   `json:"realname"`
	Address   string   `json:"address"`   // primary address
	Addresses []string `json:"addresses"` // alternate addresses, never null
	Roles     []string `json:"roles"`     // never null
}

// NewUser converts a stored user to its JSON shape.
func NewUser(u *store.User) User {
	return User{
		ID:        u.ID,
		Username:  u.Username,
		RealName:  u.RealName,
		Address:   u.Address,
		Addresses: nonNil(u.Alternates),
		Roles:     nonNil(u.Roles),
	}
}

// Inbound is one archived incoming mail as `inbound list -json` prints it.
type Inbound struct {
	ID        int64     `json:"id"`
	Received  time.Time `json:"received"`
	Source    string    `json:"source"`
	MessageID string    `json:"message_id"`
	Status    string    `json:"status"` // filed, ignored, rejected, quarantined, failed
	Reason    string    `json:"reason"`
	IssueID   *int64    `json:"issue_id"` // null when it reached no issue
}

// NewInbound converts an archive row to its JSON shape.
func NewInbound(in *store.Inbound) Inbound {
	j := Inbound{ID: in.ID, Received: in.Received.UTC(), Source: in.Source, MessageID: in.MessageID, Status: in.Status, Reason: in.Reason}
	if in.IssueID != 0 {
		id := in.IssueID
		j.IssueID = &id
	}
	return j
}

// Outbox is one queued outgoing mail as `outbox list -json` prints it.
type Outbox struct {
	ID        int64  `json:"id"`
	IssueID   *int64 `json:"issue_id"` // null for mail about no issue (an error reply)
	Recipient string `json:"recipient"`
	Status    string `json:"status"` // pending, sent, failed
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error"`
}

// NewOutbox converts an outbox row to its JSON shape.
func NewOutbox(o *store.Outbox) Outbox {
	j := Outbox{ID: o.ID, Recipient: o.Recipient, Status: o.Status, Attempts: o.Attempts, LastError: o.LastError}
	if o.IssueID != 0 {
		id := o.IssueID
		j.IssueID = &id
	}
	return j
}

// reader is the part of the store the JSON loaders read from; both
// *store.Store and *store.Tx satisfy it.
type reader interface {
	UserByID(ctx context.Context, id int64) (*store.User, error)
	Nosy(ctx context.Context, issueID int64) ([]store.User, error)
	Messages(ctx context.Context, issueID int64) ([]store.Message, error)
	Files(ctx context.Context, messageID int64) ([]store.File, error)
}

// addressCache resolves user ids to primary addresses, each id once.
type addressCache struct {
	r    reader
	byID map[int64]string
}

func (c *addressCache) address(ctx context.Context, id int64) (string, error) {
	if a, ok := c.byID[id]; ok {
		return a, nil
	}
	u, err := c.r.UserByID(ctx, id)
	if err != nil {
		return "", fmt.Errorf("user %d: %w", id, err)
	}
	c.byID[id] = u.Address
	return u.Address, nil
}

// LoadIssues converts stored issues to their JSON shape, resolving the
// assignee and nosy addresses.
func LoadIssues(ctx context.Context, r reader, issues []store.Issue) ([]Issue, error) {
	c := &addressCache{r: r, byID: map[int64]string{}}
	out := make([]Issue, 0, len(issues))
	for i := range issues {
		j, err := loadIssue(ctx, r, c, &issues[i])
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

// LoadIssueDetail converts one stored issue and its messages to JSON shape.
func LoadIssueDetail(ctx context.Context, r reader, is *store.Issue) (*IssueDetail, error) {
	c := &addressCache{r: r, byID: map[int64]string{}}
	j, err := loadIssue(ctx, r, c, is)
	if err != nil {
		return nil, err
	}
	msgs, err := r.Messages(ctx, is.ID)
	if err != nil {
		return nil, fmt.Errorf("issue %d: messages: %w", is.ID, err)
	}
	d := &IssueDetail{Issue: j, Messages: make([]Message, 0, len(msgs))}
	for _, m := range msgs {
		author, err := c.address(ctx, m.AuthorID)
		if err != nil {
			return nil, fmt.Errorf("message %d: author: %w", m.ID, err)
		}
		files, err := r.Files(ctx, m.ID)
		if err != nil {
			return nil, fmt.Errorf("message %d: files: %w", m.ID, err)
		}
		jm := Message{
			ID:        m.ID,
			Author:    author,
			Date:      m.Date.UTC(),
			MessageID: m.MessageID,
			InReplyTo: m.InReplyTo,
			Content:   m.Content,
			Files:     make([]File, 0, len(files)),
		}
		for _, f := range files {
			jm.Files = append(jm.Files, File{Name: f.Name, Type: f.Type, Size: f.Size})
		}
		d.Messages = append(d.Messages, jm)
	}
	return d, nil
}

func loadIssue(ctx context.Context, r reader, c *addressCache, is *store.Issue) (Issue, error) {
	j := Issue{
		ID:       is.ID,
		Title:    is.Title,
		Status:   is.Status,
		Priority: is.Priority,
		Keywords: nonNil(is.Keywords),
		Nosy:     []string{},
		Created:  is.Created.UTC(),
		Activity: is.Activity.UTC(),
	}
	if is.AssigneeID != 0 {
		a, err := c.address(ctx, is.AssigneeID)
		if err != nil {
			return Issue{}, fmt.Errorf("issue %d: assignee: %w", is.ID, err)
		}
		j.Assignee = &a
	}
	nosy, err := r.Nosy(ctx, is.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Issue{}, fmt.Errorf("issue %d: nosy: %w", is.ID, err)
	}
	for _, u := range nosy {
		c.byID[u.ID] = u.Address
		j.Nosy = append(j.Nosy, u.Address)
	}
	return j, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
