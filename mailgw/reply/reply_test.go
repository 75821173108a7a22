package reply

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSplitEmailReplyParser reproduces the behaviours that
// github/email_reply_parser asserts in test/email_reply_parser_test.rb
// on its fixtures (reply-text/erp-github__*.txt in the corpus), in terms
// of this package's three parts: the visible text, the signature and the
// quoted history.
func TestSplitEmailReplyParser(t *testing.T) {
	dir := corpusDir(t)
	tests := []struct {
		file       string
		text       string // Text, exactly (after strings.TrimSpace of both)
		sigPrefix  string // Signature starts with this ("" means no signature)
		quotPrefix string // Quoted starts with this ("" means nothing quoted)
	}{
		// test_reads_simple_body: "-Abhishek Kona" and the list footer are the signature.
		{"email_1_1", "Hi folks\n\nWhat is the best way to clear a Riak bucket of all key, values after \nrunning a test?\nI am currently using the Java HTTP API.",
			"-Abhishek Kona\n\n\n____", ""},
		// test_reads_bottom_post: "Hi," above the attribution and the text under the quote are kept, the quote dropped.
		{"email_1_2", "", "_______________________________________________\nriak-users mailing list", "On Tue, 2011-03-01 at 18:02 +0530, Abhishek Kona wrote:\n> Hi folks"},
		// test_reads_top_post: the first paragraphs stay; "-Abhishek Kona" is a signature; the quote goes.
		{"email_1_3", "Oh thanks.\n\nHaving the function would be great.", "-Abhishek Kona\n\n____", "On 01/03/11 7:07 PM, Russell Brown wrote:\n> Hi,"},
		// test_recognizes_date_string_above_quote: the "On ... wrote:" header sits apart from its quote.
		{"email_1_4", "Awesome! I haven't had another problem with it.", "", "On Aug 22, 2011, at 7:37 PM, defunkt<reply@reply.github.com> wrote:"},
		// test_deals_with_multiline_reply_headers: the header is wrapped over three lines.
		{"email_1_6", "I get proper rendering as well.", "Sent from a magnificent torch of pixels", "On Dec 16, 2011, at 12:47 PM, Corey Donohoe\n<reply@reply.github.com>\nwrote:"},
		// test_complex_body_with_only_one_fragment / CRLF: ":+1:" above a wrapped header with no space before "wrote:".
		{"email_1_7", ":+1:", "", "On Tue, Sep 25, 2012 at 8:59 AM, Chris Wanstrath\n<notifications@github.com>wrote:"},
		// test_reads_inline_replies: the answers between the quotes stay, the quotes and the "--" signature go.
		{"email_1_8", "I will reply under this one\n\nand under this.", "--\nHey there, this is my signature", "On Tue, Apr 29, 2014 at 4:22 PM, Example Dev <sugar@example.com>wrote:"},
		// test_parse_out_just_top_for_outlook_reply
		{"email_2_1", "Outlook with a reply", "", " ------------------------------\n\n*From:* Google Apps Sync Team"},
		// test_parse_out_just_top_for_outlook_with_reply_directly_above_line
		{"email_2_2", "Outlook with a reply directly above line", "", "________________________________________\nFrom: CRM Comments"},
		// test_parse_out_sent_from_iPhone / BlackBerry / multi-word mobile device
		{"email_iPhone", "Here is another email", "Sent from my iPhone", ""},
		{"email_BlackBerry", "Here is another email", "Sent from my BlackBerry", ""},
		{"email_multi_word_sent_from_my_mobile_device", "Here is another email", "Sent from my Verizon Wireless BlackBerry", ""},
		// test_do_not_parse_out_send_from_in_regular_sentence
		{"email_sent_from_my_not_signature", "Here is another email\n\nSent from my desk, is much easier then my mobile phone.", "", ""},
		// test_retains_bullets
		{"email_bullets", "test 2 this should list second\n\nand have spaces\n\nand retain this formatting\n\n\n   - how about bullets\n   - and another",
			"-- \n\n*Joe Smith | Director, Product Management*", "On Fri, Feb 24, 2012 at 10:19 AM, <examples@email.goalengine.com> wrote:"},
		// test_one_is_not_on: "One outstanding question" is not an attribution.
		{"email_one_is_not_on", "Thank, this is really helpful.\n\nOne outstanding question I had:\n\nLocally (on development), when I run...", "", "On Oct 1, 2012, at 11:55 PM, Dave Tapley wrote:"},
		// test_mulitple_on / greedy_on: "On your remote host ..." is text.
		{"greedy_on", "On your remote host you can run:\n\n     telnet 127.0.0.1 52698\n\nThis should connect to TextMate (on your Mac, via the tunnel). If that\nfails, the tunnel is not working.", "", "On 9 Jan 2014, at 2:47, George Plymale wrote:"},
		// test_doesnt_remove_signature_delimiter_in_mid_line
		{"email_sig_delimiter_in_middle_of_line", "Hi there!\n\nStuff happened.\n\nAnd here is a fix -- this is not a signature.\n\nkthxbai", "", ""},
		// test_sig_delimiter: "-- " on a line of its own.
		{"correct_sig", "this is an email with a correct -- signature.", "-- \nrick", ""},
		// test_pathological_emails: must be quick (checked below) and right.
		{"pathological", "I think you're onto something. I will try to fix the problem as soon as I\nget back to a computer.", "", "On Dec 8, 2013 2:10 PM, \"John Sullivan\" <notifications@github.com> wrote:"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body := readFile(t, filepath.Join(dir, "reply-text", "erp-github__"+tt.file+".txt"))
			start := time.Now()
			r := Split(body)
			if d := time.Since(start); d > time.Second {
				t.Errorf("Split took %v", d)
			}
			if tt.text != "" && strings.TrimSpace(r.Text) != strings.TrimSpace(tt.text) {
				t.Errorf("Split(%s).Text =\n%q\nwant\n%q", tt.file, r.Text, tt.text)
			}
			if !strings.HasPrefix(r.Signature, tt.sigPrefix) || (tt.sigPrefix == "") != (r.Signature == "") {
				t.Errorf("Split(%s).Signature =\n%q\nwant prefix\n%q", tt.file, r.Signature, tt.sigPrefix)
			}
			if !strings.HasPrefix(r.Quoted, tt.quotPrefix) || (tt.quotPrefix == "") != (r.Quoted == "") {
				t.Errorf("Split(%s).Quoted =\n%q\nwant prefix\n%q", tt.file, r.Quoted, tt.quotPrefix)
			}
		})
	}

	// email_1_2: the bottom post keeps "Hi," and everything written under the quote.
	r := Split(readFile(t, filepath.Join(dir, "reply-text", "erp-github__email_1_2.txt")))
	if !strings.HasPrefix(r.Text, "Hi,\n\nYou can list the keys") || !strings.HasSuffix(r.Text, "delete them all individually.\"") ||
		strings.Contains(r.Text, ">") || strings.Contains(r.Text, "wrote:") {
		t.Errorf("Split(email_1_2).Text = %q: want \"Hi,\" and the bottom-posted answer without the quote", r.Text)
	}

	// test_long_quote_processing_completes: a 750 KB quote line.
	start := time.Now()
	r = Split(readFile(t, filepath.Join(dir, "reply-text", "erp-github__email_long_quote.txt")))
	if d := time.Since(start); d > time.Second {
		t.Errorf("Split(email_long_quote) took %v", d)
	}
	if !strings.HasPrefix(r.Text, "Hi folks") || !strings.HasSuffix(r.Text, "I am currently using the Java HTTP API.") {
		t.Errorf("Split(email_long_quote).Text = %.200q...", r.Text)
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		text      string
		sig       string // "" means none
		quotedHas string // Quoted contains this ("" means Quoted must be empty)
	}{
		{
			name: "plain text is kept whole",
			body: "Hello,\n\nthe build is broken.\n\nThanks,\nBob\n",
			text: "Hello,\n\nthe build is broken.\n\nThanks,\nBob",
		},
		{
			name: "empty",
			body: "",
		},
		{
			name: "CRLF",
			body: "Fixed in r42.\r\n\r\nOn Tue, Mar 1, 2011 at 6:02 PM, Bob <bob@example.org> wrote:\r\n> It crashes.\r\n",
			text: "Fixed in r42.", quotedHas: "> It crashes.",
		},
		{
			name: "CR only",
			body: "Fixed in r42.\r\rOn Tue, Mar 1, 2011 at 6:02 PM, Bob <bob@example.org> wrote:\r> It crashes.\r",
			text: "Fixed in r42.", quotedHas: "> It crashes.",
		},
		{
			name: "top post above a quote",
			body: "Works for me.\n\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan One <megan@example.com> wrote:\n\n> Does it?\n>\n> Megan\n",
			text: "Works for me.", quotedHas: "Megan One",
		},
		{
			name: "bottom post",
			body: "On 04/02/2012 06:26 PM, Megan One wrote:\n> Does it?\n\nIt does.\n",
			text: "It does.", quotedHas: "> Does it?",
		},
		{
			name: "inline reply keeps the answers and drops the quotes",
			body: "Bob wrote:\n> first question?\n\nfirst answer\n\n> second question?\n\nsecond answer\n",
			text: "first answer\n\nsecond answer", quotedHas: "Bob wrote:",
		},
		{
			name: "a weak attribution not followed by a quote is text",
			body: "In the report I wrote:\n\nthe server dies at midnight.\n",
			text: "In the report I wrote:\n\nthe server dies at midnight.",
		},
		{
			name: "the writer quoting themselves with a date is text",
			body: "On 3 May 2020 I wrote:\nthe server dies at midnight.\nIt still does.\n",
			text: "On 3 May 2020 I wrote:\nthe server dies at midnight.\nIt still does.",
		},
		{
			name: "a line starting with On is text",
			body: "On second thought, let's ship it:\nthe risk is small.\n",
			text: "On second thought, let's ship it:\nthe risk is small.",
		},
		{
			name: "German Gmail attribution with the name after the verb",
			body: "Passt.\n\nAm Di., 3. Apr. 2012 um 16:19 Uhr schrieb Bob <bob@example.org>:\n> Passt das?\n",
			text: "Passt.", quotedHas: "schrieb Bob",
		},
		{
			name: "German Thunderbird attribution with a name and no address",
			body: "Passt.\n\nAm 03.04.2012 16:19, schrieb Bob Smith:\n> Passt das?\n",
			text: "Passt.", quotedHas: "schrieb Bob Smith:",
		},
		{
			name: "a sentence naming who wrote something is text",
			body: "On Monday Bob wrote the patch:\nit is in r42.\n",
			text: "On Monday Bob wrote the patch:\nit is in r42.",
		},
		{
			name: "Swedish",
			body: "Tack!\n\nDen tis 3 apr. 2012 kl 16:19 skrev Bob <bob@example.org>:\n> Hej\n",
			text: "Tack!", quotedHas: "skrev Bob",
		},
		{
			name: "Portuguese",
			body: "Obrigado.\n\nEm ter., 3 de abr. de 2012 às 16:19, Bob <bob@example.org> escreveu:\n> Olá\n",
			text: "Obrigado.", quotedHas: "escreveu",
		},
		{
			name: "Dutch Gmail",
			body: "Dank je.\n\nOp di 3 apr. 2012 om 16:19 schreef Bob <bob@example.org>:\n> Hoi\n",
			text: "Dank je.", quotedHas: "schreef",
		},
		{
			name: "Japanese Gmail (date, name, address, colon)",
			body: "了解です。\n\n2012年4月3日(火) 16:19 Bob <bob@example.org>:\n> こんにちは\n",
			text: "了解です。", quotedHas: "2012年4月3日",
		},
		{
			name: "Korean Gmail",
			body: "감사합니다.\n\n2012년 4월 3일 (화) 오후 4:19, Bob <bob@example.org>님이 작성:\n> 안녕하세요\n",
			text: "감사합니다.", quotedHas: "님이 작성",
		},
		{
			name: "Chinese Gmail",
			body: "好的。\n\nBob <bob@example.org> 于2012年4月3日周二 下午4:19写道：\n> 你好\n",
			text: "好的。", quotedHas: "写道",
		},
		{
			name: "Russian wrapped over two lines (Android)",
			body: "Hello\n02.04.2012 14:20 пользователь \"bob@example.org\" <\nbob@example.org> написал:\n\n> Hi\n",
			text: "Hello", quotedHas: "написал",
		},
		{
			name: "French with a no-break space before the colon",
			body: "Merci.\n\nLe mar. 3 avr. 2012 à 16:19, Bob <bob@example.org> a écrit\u00a0:\n> Salut\n",
			text: "Merci.", quotedHas: "a écrit",
		},
		{
			name: "Original Message marker",
			body: "Done.\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\nTo: Alice\nSubject: Test\n\nPlease do it.\n",
			text: "Done.", quotedHas: "Please do it.",
		},
		{
			name: "localised Outlook header block (German)",
			body: "Erledigt.\n\n________________________________\nVon: Bob <bob@example.org>\nGesendet: Montag, 2. April 2012 17:44\nAn: Alice\nBetreff: Test\n\nBitte erledigen.\n",
			text: "Erledigt.", quotedHas: "Bitte erledigen.",
		},
		{
			name: "localised Outlook header block (French)",
			body: "C'est fait.\n\nDe : Bob <bob@example.org>\nEnvoyé : lundi 2 avril 2012 17:44\nÀ : Alice\nObjet : Test\n\nMerci de le faire.\n",
			text: "C'est fait.", quotedHas: "Merci de le faire.",
		},
		{
			name: "a forward with no comment keeps the forwarded text",
			body: "---------- Forwarded message ---------\nFrom: Bob <bob@example.org>\nDate: Tue, Jan 1, 2019 at 12:00 PM\nSubject: Broken\nTo: <alice@example.org>\n\n\nThe build is broken.\n",
			text: "The build is broken.", quotedHas: "Forwarded message",
		},
		{
			name: "Outlook header block with no comment above keeps the body",
			body: "From: Bob <bob@example.org>\nSent: Monday, April 2, 2012 5:44 PM\nTo: Alice\nSubject: Broken\n\nThe build is broken.\n",
			text: "The build is broken.", quotedHas: "From: Bob",
		},
		{
			name: "unquoted history after an attribution is cut to the end",
			body: "Thank you.\n\nOn Sun, Feb 7, 2016 at 12:12 AM, Arpit <arpit@example.org> wrote:\n\nHi,\n\nmeta is updated.\n",
			text: "Thank you.", quotedHas: "meta is updated.",
		},
		{
			name: "three header lines of only two fields are text",
			body: "Set these:\nTo: alice\nTo: bob\nSubject: hello\n",
			text: "Set these:\nTo: alice\nTo: bob\nSubject: hello",
		},
		{
			name: "RFC 3676 signature",
			body: "Fixed.\n\n-- \nBob Smith\nACME Corp\n",
			text: "Fixed.", sig: "-- \nBob Smith\nACME Corp",
		},
		{
			name: "signature above a quote",
			body: "Fixed.\n\n--\nBob\n\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan <m@example.org> wrote:\n> Broken?\n",
			text: "Fixed.", sig: "--\nBob", quotedHas: "> Broken?",
		},
		{
			name: "mobile sign-offs",
			body: "OK\n\nVon meinem iPhone gesendet\n",
			text: "OK", sig: "Von meinem iPhone gesendet",
		},
		{
			name: "mobile sign-off above a quote",
			body: "OK\n\nEnvoyé de mon iPhone\n\nLe 4 janv. 2016 19:03, \"Neil\" <neil@example.org> a écrit :\n\n> Ça marche ?\n",
			text: "OK", sig: "Envoyé de mon iPhone", quotedHas: "Ça marche ?",
		},
		{
			name: "Sent from in the middle is text",
			body: "Sent from my iPhone\n\nthe rest of the message\n",
			text: "Sent from my iPhone\n\nthe rest of the message",
		},
		{
			name: "a Markdown rule in a report is not a signature",
			body: "The page crashes.\n\n---\n\nSteps:\n1. open https://example.org/x\n2. click save\n",
			text: "The page crashes.\n\n---\n\nSteps:\n1. open https://example.org/x\n2. click save",
		},
		{
			name: "a dash list item is not a sign-off",
			body: "Todo:\n\n-fix the bug\n-write tests\n",
			text: "Todo:\n\n-fix the bug\n-write tests",
		},
		{
			name: "-- in the middle of a line is not a signature",
			body: "Use foo -- not bar.\n",
			text: "Use foo -- not bar.",
		},
		{
			name: "contact block",
			body: "See you then.\n\nJane Roe\njane@example.org\n+1 555 123 4567\n",
			text: "See you then.", sig: "Jane Roe\njane@example.org\n+1 555 123 4567",
		},
		{
			name: "a last paragraph with one link is text",
			body: "The page crashes.\n\nSee\nhttps://example.org/x\n",
			text: "The page crashes.\n\nSee\nhttps://example.org/x",
		},
		{
			name: "property lines with a date and an address are text",
			body: "This is reply\n\nStatus: Resolved\ndue date: 2010-12-31\nAssigned to: jsmith@example.org\n",
			text: "This is reply\n\nStatus: Resolved\ndue date: 2010-12-31\nAssigned to: jsmith@example.org",
		},
		{
			name: "code fence protects rule lines",
			body: "Config:\n\n```\n----\n# x\n```\n\nDone.\n",
			text: "Config:\n\n```\n----\n# x\n```\n\nDone.",
		},
		{
			name:      "only a quote",
			body:      "> all quoted\n> here\n",
			quotedHas: "> all quoted",
		},
		{
			name: "blank lines around a removed quote shrink to one",
			body: "a\n\n\n> q\n\n\n\nb\n",
			text: "a\n\nb", quotedHas: "> q",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Split(tt.body)
			if r.Text != tt.text {
				t.Errorf("Split(%q).Text = %q, want %q", tt.body, r.Text, tt.text)
			}
			if r.Signature != tt.sig {
				t.Errorf("Split(%q).Signature = %q, want %q", tt.body, r.Signature, tt.sig)
			}
			if tt.quotedHas == "" && r.Quoted != "" || !strings.Contains(r.Quoted, tt.quotedHas) {
				t.Errorf("Split(%q).Quoted = %q, want it to contain %q", tt.body, r.Quoted, tt.quotedHas)
			}
			if err := subsequence(r.Text, tt.body); err != nil {
				t.Errorf("Split(%q).Text: %v", tt.body, err)
			}
		})
	}
}

func TestStripHTML(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the inside of <body>, white space removed
	}{
		{
			name: "nothing to strip comes back unchanged",
			in:   "<p>Hello <b>world</b></p>",
			want: "<p>Hello<b>world</b></p>",
		},
		{
			name: "Apple Mail blockquote type=cite with its attribution",
			in:   `<div>Sure.</div><div><br><div>On Apr 3, 2012, at 4:19 PM, bob &lt;bob@example.com&gt; wrote:</div><br><blockquote type="cite"><div>Hi</div></blockquote></div>`,
			want: `<div>Sure.</div>`,
		},
		{
			name: "Outlook divRplyFwdMsg with the rule above it",
			in:   `<div>Reply</div><div id="appendonsend"></div><hr style="display:inline-block;width:98%"><div id="divRplyFwdMsg"><b>From:</b> Bob<br><b>Sent:</b> Monday<br><b>To:</b> Alice</div><div>old</div>`,
			want: `<div>Reply</div>`,
		},
		{
			name: "Yahoo quoted container",
			in:   `<div>Yes.</div><div class="yahoo_quoted"><div>On Monday, Bob wrote:</div><div>old</div></div>`,
			want: `<div>Yes.</div>`,
		},
		{
			name: "Gmail forward without a comment keeps the forwarded message",
			in:   `<div class="gmail_quote"><div>---------- Forwarded message ---------<br>From: Bob &lt;bob@example.org&gt;<br>Date: Tue, Jan 1, 2019 at 12:00 PM<br>Subject: Broken<br>To: alice@example.org<br></div><br><div>The build is broken.</div></div>`,
			want: `<divclass="gmail_quote"><br/><div>Thebuildisbroken.</div></div>`,
		},
		{
			name: "inline quote in HTML",
			in:   `<p>Bob wrote:</p><blockquote>q1</blockquote><p>a1</p><blockquote>q2</blockquote><p>a2</p>`,
			want: `<p>a1</p><p>a2</p>`,
		},
		{
			name: "text-quoted lines (Hotmail)",
			in:   `<div>Hello<br><br>&gt; Subject: Test<br>&gt; From: bob@example.org<br>&gt; Hi</div>`,
			want: `<div>Hello<br/><br/><br/><br/></div>`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := StripHTML(tt.in)
			if noSpace(bodyHTML(got)) != tt.want {
				t.Errorf("StripHTML(%q) = %q, want %q (white space removed)", tt.in, got, tt.want)
			}
		})
	}
	if in := "<p>Hello   <b>world</b></p>\n"; StripHTML(in) != in {
		t.Errorf("StripHTML(%q) = %q, want the input unchanged", in, StripHTML(in))
	}
}
