package store_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

func TestInbound(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		// Every byte value, CRLF and bare CR, NUL, 8-bit text that is not
		// UTF-8, trailing white space: kept exactly.
		raw := []byte("From: =?iso-8859-1?q?J=F6rg?= <j@example.org>\r\nSubject: caf\xe9 \r\n\r\nbody\rbare CR\x00NUL \xff\xfe\xc3\x28 \n")
		for b := 0; b < 256; b++ {
			raw = append(raw, byte(b))
		}
		received := time.Date(2026, 9, 10, 11, 12, 13, 141516171, time.UTC)
		in := &store.Inbound{Received: received, Source: "imap:support", EnvelopeFrom: "j@example.org",
			EnvelopeTo: []string{"issues@example.org", "issues+12@example.org"}, Raw: raw, SHA256: "ignored", MessageID: "<in@x>"}
		if err := s.InsertInbound(ctx, in); err != nil {
			t.Fatalf("InsertInbound: %v", err)
		}
		sum := sha256.Sum256(raw)
		if in.ID == 0 || in.SHA256 != hex.EncodeToString(sum[:]) || in.Status != "received" || !in.Received.Equal(received.Truncate(time.Microsecond)) {
			t.Errorf("after InsertInbound: %+v", in)
		}
		raw[0] = 'X' // the store has its own copy
		got, err := s.Inbound(ctx, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		raw[0] = 'F'
		if !bytes.Equal(got.Raw, raw) {
			t.Errorf("Raw round trip differs:\n got %q\nwant %q", got.Raw, raw)
		}
		if got.Source != "imap:support" || got.EnvelopeFrom != "j@example.org" || !slices.Equal(got.EnvelopeTo, in.EnvelopeTo) ||
			got.SHA256 != in.SHA256 || got.MessageID != "<in@x>" || got.Status != "received" || !got.Received.Equal(in.Received) ||
			got.IssueID != 0 || got.MsgID != 0 {
			t.Errorf("Inbound = %+v", got)
		}

		// The outcome.
		u := mustUser(t, s, "j@example.org")
		is := mustIssue(t, s, "café", u.ID)
		m := mustMessage(t, s, is.ID, u.ID, "<in@x>", "body")
		in.Status, in.IssueID, in.MsgID, in.MessageID = "filed", is.ID, m.ID, "<in2@x>"
		if err := s.UpdateInbound(ctx, in); err != nil {
			t.Fatalf("UpdateInbound: %v", err)
		}
		got, err = s.Inbound(ctx, in.ID)
		if err != nil || got.Status != "filed" || got.IssueID != is.ID || got.MsgID != m.ID || got.MessageID != "<in2@x>" || !bytes.Equal(got.Raw, raw) {
			t.Errorf("after UpdateInbound: %+v, %v", got, err)
		}
		wantErr(t, "UpdateInbound(missing)", s.UpdateInbound(ctx, &store.Inbound{ID: 999999, Status: "failed"}), store.ErrNotFound)
		if err := s.UpdateInbound(ctx, &store.Inbound{ID: in.ID, Status: "lost"}); err == nil {
			t.Error("UpdateInbound(status lost) succeeded")
		}

		// More rows: an empty mail, the same bytes again, rejected mail.
		empty := &store.Inbound{Source: "deliver"}
		again := &store.Inbound{Source: "smtp", Raw: raw}
		rejected := &store.Inbound{Source: "pop3:x", Raw: []byte("junk"), Status: "rejected", Reason: "unknown sender"}
		for _, x := range []*store.Inbound{empty, again, rejected} {
			if err := s.InsertInbound(ctx, x); err != nil {
				t.Fatalf("InsertInbound: %v", err)
			}
		}
		if got, err := s.Inbound(ctx, empty.ID); err != nil || got.Raw == nil || len(got.Raw) != 0 || len(got.EnvelopeTo) != 0 {
			t.Errorf("Inbound(empty) = %+v, %v", got, err)
		}
		list, err := s.ListInbound(ctx, store.InboundFilter{})
		if err != nil || len(list) != 4 || list[0].ID != rejected.ID || list[3].ID != in.ID {
			t.Errorf("ListInbound = %+v, %v; want 4, newest first", list, err)
		} else if list[3].Raw != nil {
			t.Error("ListInbound loaded Raw")
		}
		if list, err := s.ListInbound(ctx, store.InboundFilter{Status: "rejected"}); err != nil || len(list) != 1 || list[0].Reason != "unknown sender" {
			t.Errorf("ListInbound(rejected) = %+v, %v", list, err)
		}
		if list, err := s.ListInbound(ctx, store.InboundFilter{Limit: 2}); err != nil || len(list) != 2 || list[0].ID != rejected.ID {
			t.Errorf("ListInbound(limit 2) = %+v, %v", list, err)
		}
		same, err := s.InboundBySHA256(ctx, in.SHA256)
		if err != nil || len(same) != 2 || same[0].ID != in.ID || same[1].ID != again.ID {
			t.Errorf("InboundBySHA256 = %+v, %v", same, err)
		}
		if none, err := s.InboundBySHA256(ctx, "00"); err != nil || len(none) != 0 {
			t.Errorf("InboundBySHA256(unknown) = %+v, %v", none, err)
		}
		_, err = s.Inbound(ctx, 999999)
		wantErr(t, "Inbound(missing)", err, store.ErrNotFound)
		if err := s.InsertInbound(ctx, &store.Inbound{Source: "smtp", EnvelopeTo: []string{"a\nb"}}); err == nil {
			t.Error("InsertInbound(recipient with a newline) succeeded")
		}
	})
}
