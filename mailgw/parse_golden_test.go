package mailgw

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var updateGolden = flag.Bool("update", false, "rewrite the expected .json files of the golden tests")

// goldenFile is how an Attachment appears in a golden file: the content
// by size and hash, and as text when it is short and printable.
type goldenFile struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Size      int    `json:"size"`
	SHA256    string `json:"sha256"`
	Inline    bool   `json:"inline,omitempty"`
	ContentID string `json:"content_id,omitempty"`
	Text      string `json:"text,omitempty"`
}

// goldenView is the part of a Submission the golden files record.
type goldenView struct {
	MessageID    string       `json:"message_id,omitempty"`
	InReplyTo    []string     `json:"in_reply_to,omitempty"`
	References   []string     `json:"references,omitempty"`
	Subject      string       `json:"subject"`
	From         Address      `json:"from"`
	ResentFrom   *Address     `json:"resent_from,omitempty"`
	ReplyTo      []Address    `json:"reply_to,omitempty"`
	To           []Address    `json:"to,omitempty"`
	Cc           []Address    `json:"cc,omitempty"`
	DeliveredTo  []string     `json:"delivered_to,omitempty"`
	Date         string       `json:"date,omitempty"`
	Text         string       `json:"text"`
	TextFromHTML bool         `json:"text_from_html,omitempty"`
	HTMLBytes    int          `json:"html_bytes,omitempty"`
	Files        []goldenFile `json:"files,omitempty"`
	Class        string       `json:"class"`
	ClassReason  string       `json:"class_reason,omitempty"`
	Bounce       *BounceInfo  `json:"bounce,omitempty"`
	ListMail     bool         `json:"list_mail,omitempty"`
	AuthResults  []string     `json:"auth_results,omitempty"`
	Warnings     []string     `json:"warnings,omitempty"`
}

func view(s *Submission) goldenView {
	v := goldenView{
		MessageID: s.MessageID, InReplyTo: s.InReplyTo, References: s.References,
		Subject: s.Subject, From: s.From, ResentFrom: s.ResentFrom, ReplyTo: s.ReplyTo,
		To: s.To, Cc: s.Cc, DeliveredTo: s.DeliveredTo,
		Text: s.Text, TextFromHTML: s.TextFromHTML, HTMLBytes: len(s.HTML),
		Class: s.Class.String(), ClassReason: s.ClassReason, Bounce: s.Bounce,
		ListMail: s.ListMail, AuthResults: s.AuthResults, Warnings: s.Warnings,
	}
	if !s.Date.IsZero() {
		v.Date = s.Date.Format(time.RFC3339)
	}
	for _, f := range s.Files {
		sum := sha256.Sum256(f.Data)
		gf := goldenFile{Name: f.Name, Type: f.Type, Size: len(f.Data), SHA256: hex.EncodeToString(sum[:8]),
			Inline: f.Inline, ContentID: f.ContentID}
		if len(f.Data) > 0 && len(f.Data) <= 200 && utf8.Valid(f.Data) && !bytes.ContainsAny(f.Data, "\x00") {
			gf.Text = string(f.Data)
		}
		v.Files = append(v.Files, gf)
	}
	return v
}

// TestGolden parses each testdata/golden/*.eml and compares the result
// with the .json beside it. -update rewrites the .json files; on a
// mismatch the result is written to a .got file beside the .eml.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden files in testdata/golden")
	}
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			raw, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Parse(raw, Limits{})
			if err != nil {
				t.Fatalf("Parse(%s): %v", name, err)
			}
			got, err := json.MarshalIndent(view(s), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			want := strings.TrimSuffix(name, ".eml") + ".json"
			gotFile := strings.TrimSuffix(name, ".eml") + ".got"
			if *updateGolden {
				if err := os.WriteFile(want, got, 0o644); err != nil {
					t.Fatal(err)
				}
				os.Remove(gotFile)
				return
			}
			exp, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("read expected result (run with -update to create it): %v", err)
			}
			if !bytes.Equal(got, exp) {
				if err := os.WriteFile(gotFile, got, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Errorf("Parse(%s) differs from %s; result written to %s (diff them, or -update)", name, want, gotFile)
				return
			}
			os.Remove(gotFile)
		})
	}
}
