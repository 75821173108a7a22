package mailgw

import (
	"fmt"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	const body = "\n\nHello.\n"
	tests := []struct {
		name   string
		header string // lines without From/To, which are added
		class  Class
		reason string // substring of ClassReason
	}{
		{"normal", "Subject: Printer on fire", Normal, ""},
		{"loop beats everything", "X-Tracker-Loop: elsewhere\nAuto-Submitted: auto-generated\nSubject: Undeliverable: x", Loop, "X-Tracker-Loop"},
		{"loop with empty value", "X-Tracker-Loop:\nSubject: x", Loop, "X-Tracker-Loop"},
		{"auto-submitted", "Auto-Submitted: auto-generated\nSubject: x", AutoReply, "auto-generated"},
		{"auto-submitted case", "Auto-Submitted: Auto-Replied\nSubject: x", AutoReply, "auto-replied"},
		{"auto-submitted no", "Auto-Submitted: no\nSubject: x", Normal, ""},
		{"x-autoreply", "X-Autoreply: yes\nSubject: x", AutoReply, "X-Autoreply"},
		{"x-autorespond", "X-Autorespond: x\nSubject: x", AutoReply, "X-Autorespond"},
		{"x-autoresponse", "X-Autoresponse: 1\nSubject: x", AutoReply, "X-Autoresponse"},
		{"precedence bulk", "Precedence: bulk\nSubject: x", AutoReply, "bulk"},
		{"precedence junk", "Precedence: junk\nSubject: x", AutoReply, "junk"},
		{"precedence auto_reply", "Precedence: auto_reply\nSubject: x", AutoReply, "auto_reply"},
		{"precedence list", "Precedence: list\nSubject: x", Normal, ""},
		{"out of office", "Subject: Out of Office: Printer on fire", AutoReply, "subject"},
		{"out of office alone", "Subject: Out of office", AutoReply, "subject"},
		{"out of office in a title", "Subject: Out of office calendar entries vanish", Normal, ""},
		{"automatic reply", "Subject: Automatic reply: x", AutoReply, "subject"},
		{"autoreply", "Subject: Autoreply: x", AutoReply, "subject"},
		{"auto:", "Subject: Auto: x", AutoReply, "subject"},
		{"abwesenheitsnotiz", "Subject: Abwesenheitsnotiz: x", AutoReply, "subject"},
		{"automatische antwort", "Subject: Automatische Antwort: x", AutoReply, "subject"},
		{"réponse automatique", "Subject: =?utf-8?q?R=C3=A9ponse_automatique=3A_x?=", AutoReply, "subject"},
		{"risposta automatica", "Subject: Risposta automatica: x", AutoReply, "subject"},
		{"respuesta automática", "Subject: =?utf-8?q?Respuesta_autom=C3=A1tica=3A?= x", AutoReply, "subject"},
		{"自动回复", "Subject: =?utf-8?b?6Ieq5Yqo5Zue5aSNOiB4?=", AutoReply, "subject"},
		{"re: out of office", "Subject: RE: Out of Office: x", AutoReply, "subject"},
		{"aol suffix", "Subject: Re: x (Automatic Response)", AutoReply, "subject"},
		{"rt autoreply", "Subject: [rt.example #1] AutoReply: x", AutoReply, "subject"},
		{"mailer-daemon", "From: MAILER-DAEMON@mx.example.org\nSubject: anything", Bounce, "MAILER-DAEMON"},
		{"mailer daemon display name", "From: MAILER DAEMON <>\nSubject: anything", Bounce, "MAILER-DAEMON"},
		{"postmaster + bounce subject", "From: postmaster@example.org\nSubject: Undeliverable: x", Bounce, "postmaster"},
		{"postmaster alone", "From: postmaster@example.org\nSubject: Our new mail policy", Normal, ""},
		{"bounce subject + auto-submitted", "Auto-Submitted: auto-replied\nSubject: Mail delivery failed: returning message", Bounce, "Auto-Submitted"},
		{"bounce subject + null return-path", "Return-Path: <>\nSubject: Returned mail: see transcript", Bounce, "Return-Path"},
		{"bounce subject alone", "Subject: Mail delivery failed for the new relay", Normal, ""},
		{"x-failed-recipients", "X-Failed-Recipients: a@example.org\nSubject: x", Bounce, "X-Failed-Recipients"},
		{"null return-path", "Return-Path: <>\nSubject: x", Bounce, "null sender"},
		{"null envelope from", "X-Envelope-From: <>\nSubject: x", Bounce, "null sender"},
		{"return-path not null", "Return-Path: <a@example.org>\nSubject: x", Normal, ""},
		{"auto-reply beats null sender", "Return-Path: <>\nSubject: Automatic reply: x", AutoReply, "subject"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := tc.header
			if !strings.Contains(hdr, "From:") {
				hdr = "From: Bob <bob@example.org>\n" + hdr
			}
			raw := hdr + "\nTo: tracker@example.org" + body
			s, err := Parse([]byte(raw), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if s.Class != tc.class || !strings.Contains(s.ClassReason, tc.reason) {
				t.Errorf("Parse(%q): Class %v reason %q, want %v reason containing %q", raw, s.Class, s.ClassReason, tc.class, tc.reason)
			}
			if (s.Class == Bounce) != (s.Bounce != nil) {
				t.Errorf("Class %v but Bounce %+v", s.Class, s.Bounce)
			}
		})
	}
}

func TestClassifyMbox(t *testing.T) {
	raw := "From MAILER-DAEMON Fri Apr 06 16:46:09 2001\nFrom: someone@example.org\nSubject: x\n\nbody\n"
	s, err := Parse([]byte(raw), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Class != Bounce || !strings.Contains(s.ClassReason, "mbox") {
		t.Errorf("Class %v reason %q, want Bounce from the mbox From_ line", s.Class, s.ClassReason)
	}
}

func TestParseDSN(t *testing.T) {
	in := "Reporting-MTA: dns; mx.example\r\n\r\n" +
		"Final-Recipient: RFC822; <A@Example.org>\r\nAction: failed\r\nStatus: 5.1.1 (user unknown)\r\n\r\n" +
		"Original-Recipient: rfc822;b@example.org\r\nAction: delayed\r\nDiagnostic-Code: smtp; 451 4.7.1 greylisted\r\n\r\n" +
		"Final-Recipient: rfc822;c@example.org\r\nAction: relayed\r\n"
	got := fmt.Sprint(parseDSN([]byte(in)))
	want := fmt.Sprint([]dsnRecipient{{"A@Example.org", "failed", "5.1.1"}, {"b@example.org", "delayed", "4.7.1"}, {"c@example.org", "relayed", ""}})
	if got != want {
		t.Errorf("parseDSN = %s, want %s", got, want)
	}
}

func TestIsNullSender(t *testing.T) {
	for in, want := range map[string]bool{
		"": true, "<>": true, " <> ": true, "MAILER-DAEMON": true, "mailer-daemon": true,
		"a@example.org": false, "<a@example.org>": false, "MAILER-DAEMON@example.org": false,
	} {
		if got := IsNullSender(in); got != want {
			t.Errorf("IsNullSender(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestClassString(t *testing.T) {
	want := []string{"normal", "auto-reply", "bounce", "read-receipt", "feedback-report", "dmarc-report", "loop"}
	for c := Normal; c <= Loop; c++ {
		if got := c.String(); got != want[c] {
			t.Errorf("Class(%d).String() = %q, want %q", c, got, want[c])
		}
	}
	if got := Class(99).String(); got != "class(99)" {
		t.Errorf("Class(99).String() = %q", got)
	}
}
