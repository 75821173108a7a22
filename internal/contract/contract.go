// Package contract writes out, for tests, the JSON shapes DESIGN §3 makes
// a contract: `issue list|show -json` and the web view's /api/issues.
// They are spelled out here independently of web/api.go, so that a test
// decoding into them checks the contract and not the code that makes it.
package contract

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Issue is one element of `issue list -json` and of /api/issues.
type Issue struct {
	ID       int64     `json:"id"`
	Title    string    `json:"title"`
	Status   string    `json:"status"`
	Priority string    `json:"priority"`
	Assignee *string   `json:"assignee"`
	Keywords []string  `json:"keywords"`
	Nosy     []string  `json:"nosy"`
	Created  time.Time `json:"created"`
	Activity time.Time `json:"activity"`
}

// IssueDetail is `issue show -json` and /api/issues/N.
type IssueDetail struct {
	Issue
	Messages []Message `json:"messages"`
}

// Message is one message of an IssueDetail.
type Message struct {
	ID        int64     `json:"id"`
	Author    string    `json:"author"`
	Date      time.Time `json:"date"`
	MessageID string    `json:"message_id"`
	InReplyTo string    `json:"in_reply_to"`
	Content   string    `json:"content"`
	Files     []struct {
		Name string `json:"name"`
		Type string `json:"type"`
		Size int64  `json:"size"`
	} `json:"files"`
}

// IssueFields are the keys every Issue object must carry (null or empty,
// never missing).
var IssueFields = []string{"id", "title", "status", "priority", "assignee", "keywords", "nosy", "created", "activity"}

// Decode decodes data into v, refusing unknown fields and trailing data,
// and checks that every object of it (the value, or each element of an
// array) carries every key in fields.
func Decode(tb testing.TB, data string, v any, fields ...string) {
	tb.Helper()
	dec := json.NewDecoder(strings.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		tb.Fatalf("decode %T: %v\n%s", v, err, data)
	}
	if dec.More() {
		tb.Fatalf("decode %T: trailing data after the JSON value\n%s", v, data)
	}
	if len(fields) == 0 {
		return
	}
	var raw any
	if err := json.Unmarshal([]byte(data), &raw); err != nil {
		tb.Fatal(err)
	}
	objs := []any{raw}
	if a, ok := raw.([]any); ok {
		objs = a
	}
	for _, o := range objs {
		m, ok := o.(map[string]any)
		if !ok {
			tb.Errorf("JSON value is not an object: %v", o)
			continue
		}
		for _, f := range fields {
			if _, ok := m[f]; !ok {
				tb.Errorf("JSON object lacks %q: %v", f, m)
			}
		}
	}
}
