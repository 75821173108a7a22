package mailgw

import (
	"encoding/base64"
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// benchTypical is a ~4 KB reply as a modern MUA sends it: transport
// headers, DKIM, multipart/alternative with quoted text.
func benchTypical() []byte {
	var b strings.Builder
	b.WriteString("Return-Path: <alice@example.org>\r\n")
	b.WriteString("Delivered-To: tracker+42@example.org\r\n")
	for i := 0; i < 3; i++ {
		fmt.Fprintf(&b, "Received: from mx%d.example.org (mx%d.example.org [192.0.2.%d])\r\n\tby mail.example.org (Postfix) with ESMTPS id 4F1x%dZ\r\n\tfor <tracker+42@example.org>; Tue, 1 Jun 2010 12:00:0%d +0200 (CEST)\r\n", i, i, i, i, i)
	}
	b.WriteString("Authentication-Results: mail.example.org; dkim=pass header.d=example.org; spf=pass smtp.mailfrom=example.org; dmarc=pass header.from=example.org\r\n")
	b.WriteString("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=s1;\r\n\th=from:to:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n\tb=dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSbav+yuU4zGeeruD00lszZVoG4ZHRNiYzR\r\n")
	b.WriteString("From: =?utf-8?q?Alice_M=C3=BCller?= <alice@example.org>\r\n")
	b.WriteString("To: Tracker <tracker+42@example.org>\r\nCc: Bob <bob@example.org>, carol@example.org\r\n")
	b.WriteString("Subject: Re: [issue42] Printer on fire =?utf-8?q?=E2=80=94_again?=\r\n")
	b.WriteString("Date: Tue, 1 Jun 2010 12:00:00 +0200\r\nMessage-ID: <reply-42@example.org>\r\n")
	b.WriteString("In-Reply-To: <issue42-msg7@tracker.example.org>\r\nReferences: <issue42@tracker.example.org> <issue42-msg7@tracker.example.org>\r\n")
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"000000000000abcdef\"\r\n\r\n")
	para := "The printer on the third floor caught fire again this morning; facilities say the fuser unit overheats when the tray is empty. "
	b.WriteString("--000000000000abcdef\r\nContent-Type: text/plain; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	b.WriteString("Hi all,\r\n\r\n" + para + para + "\r\n\r\nCheers,\r\nAlice\r\n\r\nOn Mon, 31 May 2010 at 18:00, Tracker <tracker@example.org> wrote:\r\n")
	for i := 0; i < 14; i++ {
		b.WriteString("> " + para[:70] + "\r\n")
	}
	b.WriteString("\r\n--000000000000abcdef\r\nContent-Type: text/html; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	b.WriteString("<div dir=3D\"ltr\"><div>Hi all,</div><div><br></div><div>" + para + para + "</div><div><br></div><div>Cheers,<br>Alice</div></div><br><div class=3D\"gmail_quote\"><div>On Mon, 31 May 2010 wrote:<br></div><blockquote class=3D\"gmail_quote\">" + para + para + para + "</blockquote></div>\r\n")
	b.WriteString("--000000000000abcdef--\r\n")
	return []byte(b.String())
}

// benchAttachment is a short text with a 200 KB binary attachment.
func benchAttachment() []byte {
	data := make([]byte, 200<<10)
	rand.New(rand.NewSource(1)).Read(data)
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	b.WriteString("From: Alice <alice@example.org>\r\nTo: tracker@example.org\r\nSubject: [issue42] logs attached\r\n")
	b.WriteString("Date: Tue, 1 Jun 2010 12:00:00 +0200\r\nMessage-ID: <att-42@example.org>\r\nMIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n--mix\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe crash dump is attached.\r\n")
	b.WriteString("--mix\r\nContent-Type: application/octet-stream; name=\"core.dump\"\r\nContent-Disposition: attachment; filename=\"core.dump\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--mix--\r\n")
	return []byte(b.String())
}

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct {
		name string
		raw  []byte
	}{
		{"typical-4KB", benchTypical()},
		{"attachment-200KB", benchAttachment()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := Parse(bc.raw, Limits{}); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(bc.raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(bc.raw, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestBenchMessages(t *testing.T) {
	s, err := Parse(benchTypical(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(benchTypical()); n < 3500 || n > 5000 {
		t.Errorf("typical message is %d bytes, want about 4 KB", n)
	}
	if s.Class != Normal || !strings.HasPrefix(s.Text, "Hi all,") || s.Subject != "Re: [issue42] Printer on fire — again" {
		t.Errorf("typical: Class %v Subject %q Text %q", s.Class, s.Subject, truncate(s.Text, 40))
	}
	s, err = Parse(benchAttachment(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Files) != 1 || len(s.Files[0].Data) != 200<<10 {
		t.Errorf("attachment: %d files", len(s.Files))
	}
}
