package reply

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// kind is what one line of a body looks like on its own, before the
// planner looks at its neighbours (email_reply_trimmer's line classes).
type kind uint8

const (
	kText       kind = iota // anything else: the writer's own words
	kEmpty                  // nothing but white space
	kQuote                  // ">"-quoted
	kDelim                  // only rule characters: "--", "____", "-----", "ᐧ"
	kMobile                 // a client sign-off: "Sent from my iPhone", "Envoyé depuis mon iPhone"
	kHeader                 // a header line of an embedded mail: "From: …", "*Sent:* …", "Von: …"
	kMarker                 // "-----Original Message-----", "---------- Forwarded message ---------"
	kAttrib                 // an attribution with a date, time or address: "On <date>, <name> wrote:"
	kAttribWeak             // an attribution without one: "Bob wrote:"; only counts before a quote
)

// maxMatchLen bounds the lines that the regular expressions look at:
// attributions, header lines and client sign-offs are short, and a
// megabyte-long line (erp-github's long-quote fixture) is text whatever it
// holds. RE2 is linear anyway; this keeps the constant small.
const maxMatchLen = 1000

// maxJoin is how many physical lines one attribution may be wrapped over
// ("On Mon, Feb 1, 2016 at 6:32 PM, Jeff Atwood <info@discourse.org>" /
// "wrote:"); email_reply_trimmer joins up to five.
const maxJoin = 4

// delimRunes are the characters a rule line is made of
// (email_reply_trimmer's DelimiterMatcher, plus the en dash and the
// invisible "ᐧ" Gmail leaves as a tracking glyph).
const delimRunes = "-_,=+~#*ᐧ—–"

// isBlank reports whether s holds only white space, including the
// no-break and zero-width spaces that HTML-to-text conversion leaves.
func isBlank(s string) bool {
	for _, r := range s {
		if !unicode.IsSpace(r) && !isInvisible(r) {
			return false
		}
	}
	return true
}

func isInvisible(r rune) bool {
	switch r {
	case '\u200b', '\u200c', '\u200d', '\u200e', '\u200f', '\u2060', '\ufeff', '\u00ad':
		return true
	}
	return false
}

// matchForm is the copy of a line the patterns see: unusual spaces
// become ' ', invisible characters go, runs of spaces shrink to one, and
// the ends are trimmed. The body itself is never changed.
func matchForm(s string) string {
	if plainForm(s) {
		return s // the common case: nothing to change, no copy
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case isInvisible(r):
			continue
		case unicode.IsSpace(r):
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// plainForm reports whether s is its own match form: printable ASCII
// with single spaces between words and none at the ends.
func plainForm(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return s == ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' || (c == ' ' && s[i+1] == ' ') {
			return false
		}
	}
	return true
}

// isQuote reports a ">"-quoted line ("> text", ">text", "  > text").
func isQuote(s string) bool {
	t := strings.TrimLeft(s, " \t")
	return strings.HasPrefix(t, ">")
}

// isDelim reports a line made only of rule characters.
func isDelim(s string) bool {
	t := strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || isInvisible(r) })
	if t == "" {
		return false
	}
	for _, r := range t {
		if !strings.ContainsRune(delimRunes, r) {
			return false
		}
	}
	return true
}

// isSigDash reports the RFC 3676 §4.3 signature separator "-- " and its
// common mangling "--" (the trailing space is often stripped in transit).
func isSigDash(s string) bool {
	return strings.TrimRight(s, " \t") == "--"
}

// Header keys of embedded mail header blocks, by field. Outlook, Gmail,
// Apple Mail, Thunderbird and webmails write these in the reader's
// language.
var headerKeys = buildHeaderKeys()

const (
	hFrom = 1 << iota
	hDate
	hTo
	hCc
	hSubject
)

func buildHeaderKeys() map[string]byte {
	m := map[string]byte{}
	add := func(field byte, keys ...string) {
		for _, k := range keys {
			m[strings.ToLower(k)] = field
		}
	}
	add(hFrom, "from", "de", "von", "van", "da", "od", "от", "från", "fra", "frá", "lähettäjä",
		"kimden", "feladó", "expéditeur", "remitente", "mittente", "afzender", "absender",
		"差出人", "发件人", "發件人", "寄件者", "寄件人", "보낸 사람", "보낸사람", "từ", "nadawca", "odesílatel")
	add(hDate, "date", "sent", "datum", "gesendet", "envoyé", "envoye", "enviado", "enviada",
		"inviato", "verzonden", "wysłano", "wysłane", "отправлено", "дата", "skickat", "sendt",
		"lähetetty", "päivämäärä", "tarih", "gönderildi", "gönderilme", "elküldve", "dátum", "data", "fecha",
		"送信日時", "日付", "发送时间", "發送時間", "日期", "寄件日期", "時間", "보낸 날짜", "날짜",
		"ngày", "đã gửi", "odesláno")
	add(hTo, "to", "à", "a", "an", "aan", "para", "do", "кому", "till", "til", "vastaanottaja",
		"kime", "címzett", "komu", "宛先", "收件人", "收件者", "받는 사람", "받는사람", "đến", "adresat", "destinatario")
	add(hCc, "cc", "bcc", "kopie", "kopia", "копия", "copie", "copia", "kopi", "抄送", "副本", "참조", "cco")
	add(hSubject, "subject", "objet", "betreff", "asunto", "oggetto", "onderwerp", "assunto",
		"temat", "тема", "ämne", "emne", "aihe", "konu", "tárgy", "předmět", "件名", "主题", "主題",
		"主旨", "제목", "chủ đề", "tema", "sujet")
	return m
}

// headerField returns the field of a header line of an embedded mail
// ("From: x", "*Sent:* y", "**Von:** z"), or 0.
func headerField(m string) byte {
	t := strings.TrimLeft(m, " \t*_")
	i := firstColon(t[:min(len(t), 40+len("："))])
	if i <= 0 || i > 40 {
		return 0
	}
	key := strings.ToLower(strings.Trim(t[:i], " \t*_"))
	return headerKeys[key]
}

// firstColon is strings.IndexAny(s, ":：") without its rune loop.
func firstColon(s string) int {
	i := strings.IndexByte(s, ':')
	if j := strings.Index(s, "："); j >= 0 && (i < 0 || j < i) {
		i = j
	}
	return i
}

// Client sign-offs (email_reply_trimmer's SignatureMatcher, made stricter
// so that github/email_reply_parser's "Sent from my desk, is much easier
// then my mobile phone." stays text: after the device name only an
// apology for typos may follow).
var (
	sentFromRe = regexp.MustCompile(`^[(<\[]*sent (?:from|via|with|using|by|on) (.+?)[)>\]]*$`)
	excuseRe   = regexp.MustCompile(`^(?:please |pls |and )?(?:excuse|pardon|forgive|sorry|apologies)`)
	// mobileRes are tried only on lines that contain need (one of the
	// "|"-separated words), which keeps unanchored patterns off most lines.
	// prefix, when set, is the literal the anchored pattern starts with:
	// a line without it cannot match, so the pattern is not run.
	mobileRes = []struct {
		need, prefix string
		re           *regexp.Regexp
	}{
		{"mobile|phone|cell|iphone|ipad|android|blackberry|tablet", "", regexp.MustCompile(`^(?:\S+ ){0,2}(?:from|via) (?:my |a |an )?(?:mobile|phone|cell|cellphone|smartphone|iphone|ipad|android|blackberry|tablet)(?: device| phone)?\.?$`)},
		{"", "from my ", regexp.MustCompile(`^from my (?:iphone|ipad|ipod|android|blackberry|mobile|phone|cell|samsung|galaxy|htc|nokia|sony|motorola|pixel|huawei|xiaomi|oneplus|lg|tablet)\b.{0,20}$`)},
		{"", "get ", regexp.MustCompile(`^get (?:\[)?outlook for (?:ios|android)`)},
		{"", "envoy", regexp.MustCompile(`^envoy[ée] (?:depuis|de|à partir de|avec) .{1,60}$`)},
		{"", "von meine", regexp.MustCompile(`^von meine[mnr]? .{1,60} gesendet\.?$`)},
		{"", "diese nachricht wurde von ", regexp.MustCompile(`^diese nachricht wurde von .{1,80} gesendet\.?$`)},
		{"", "gesendet ", regexp.MustCompile(`^gesendet (?:von|mit|vom|über) .{1,60}$`)},
		{"", "ver", regexp.MustCompile(`^(?:verzonden|verstuurd) (?:met|vanaf|van|via) .{1,60}$`)},
		{"", "enviad", regexp.MustCompile(`^enviad[oa] (?:desde|de|do|da|a partir d[oe]|via|con|pelo|com) .{1,60}$`)},
		{"", "inviato da ", regexp.MustCompile(`^inviato da .{1,60}$`)},
		{"", "skickat från ", regexp.MustCompile(`^skickat från .{1,60}$`)},
		{"", "sendt fra ", regexp.MustCompile(`^sendt fra .{1,60}$`)},
		{"", "wysłane ", regexp.MustCompile(`^wysłane (?:z|ze|przy użyciu) .{1,60}$`)},
		{"", "отправлено ", regexp.MustCompile(`^отправлено (?:с|из|со) .{1,60}$`)},
		{"", "lähetetty ", regexp.MustCompile(`^lähetetty .{1,60}$`)},
		{"", "odesláno z ", regexp.MustCompile(`^odesláno z .{1,60}$`)},
		{"gönderildi", "", regexp.MustCompile(`^.{1,40}(?:'(?:dan|den|tan|ten)|’(?:dan|den|tan|ten)) gönderildi\.?$`)},
		{"我的", "", regexp.MustCompile(`^(?:从|從)我的.{0,30}(?:发送|傳送|發送)$`)},
		{"から送信", "", regexp.MustCompile(`^.{1,30}から送信(?:しました)?$`)},
		{"에서 보냄", "", regexp.MustCompile(`^.{1,30}에서 보냄$`)},
	}
)

// isMobile reports a client sign-off line. m is the line's match form,
// lower-cased.
func isMobile(m string) bool {
	if m == "" || utf8.RuneCountInString(m) > 120 {
		return false
	}
	if !strings.HasPrefix(strings.TrimLeft(m, "(<["), "sent ") {
		// sentFromRe cannot match: skip it.
	} else if sub := sentFromRe.FindStringSubmatch(m); sub != nil {
		device, rest := splitClause(sub[1])
		if len(strings.Fields(device)) > 8 {
			return false
		}
		return rest == "" || excuseRe.MatchString(rest)
	}
	fields := -1 // counted when a pattern is to run
	ascii := isASCII(m)
	for _, p := range mobileRes {
		if (p.prefix != "" && !strings.HasPrefix(m, p.prefix)) || (p.need != "" && (ascii && !isASCII(p.need) || !containsAny(m, p.need))) {
			continue
		}
		if fields < 0 {
			if fields = countFields(m); fields > 12 {
				return false
			}
		}
		if p.re.MatchString(m) {
			return true
		}
	}
	return false
}

// isASCII reports whether s is all ASCII (then it cannot contain a
// non-ASCII word).
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// countFields is len(strings.Fields(s)) without the slice.
func countFields(s string) int {
	n, in := 0, false
	for _, r := range s {
		sp := unicode.IsSpace(r)
		if !sp && !in {
			n++
		}
		in = !sp
	}
	return n
}

// containsAny reports whether s contains one of the "|"-separated words.
func containsAny(s, words string) bool {
	for words != "" {
		w := words
		if i := strings.IndexByte(words, '|'); i >= 0 {
			w, words = words[:i], words[i+1:]
		} else {
			words = ""
		}
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// splitClause splits s at the first ", " or ". " (a URL's dots do not
// count).
func splitClause(s string) (head, rest string) {
	for i := 0; i+1 < len(s); i++ {
		if (s[i] == ',' || s[i] == '.' || s[i] == ';') && s[i+1] == ' ' {
			return s[:i], strings.TrimSpace(s[i+1:])
		}
	}
	return s, ""
}

// Markers that open an embedded (forwarded or "original") message.
var markerRes = []*regexp.Regexp{
	regexp.MustCompile(`^[>* ]*-{2,} ?(?:original message|forwarded message|forwarded e-?mail|` +
		`ursprüngliche nachricht|originalnachricht|weitergeleitete nachricht|` +
		`message d'origine|message original|message transféré|message transfere|` +
		`mensaje original|mensaje reenviado|messaggio originale|messaggio inoltrato|` +
		`oorspronkelijk bericht|origineel bericht|doorgestuurd bericht|` +
		`mensagem original|mensagem encaminhada|ursprungligt meddelande|vidarebefordrat meddelande|` +
		`opprinnelig melding|videresendt melding|oprindelig meddelelse|videresendt meddelelse|` +
		`alkuperäinen viesti|välitetty viesti|wiadomość oryginalna|oryginalna wiadomość|przekazana wiadomość|` +
		`původní zpráva|přeposlaná zpráva|eredeti üzenet|továbbított üzenet|orijinal mesaj|iletilen mesaj|` +
		`исходное сообщение|пересылаемое сообщение|пересланное сообщение|` +
		`原始邮件|原始郵件|转发的邮件|轉寄的郵件|元のメッセージ|転送されたメッセージ|원본 메시지|전달된 메시지)` +
		` ?-{2,}[ :]*$`),
	regexp.MustCompile(`^[>* ]*(?:begin forwarded message|début du message réexpédié|début du message transféré|` +
		`inicio del mensaje reenviado|comienzo del mensaje reenviado|anfang der weitergeleiteten nachricht|` +
		`inizio messaggio inoltrato|begin doorgestuurd bericht|início da mensagem reencaminhada|` +
		`início da mensagem encaminhada|vidarebefordrat brev|videresendt brev|` +
		`начало переадресованного сообщения|転送されたメッセージ) ?[:：]?$`),
}

// isMarker reports a marker line; m is the match form, lower-cased.
func isMarker(m string) bool {
	// Cheap tests of what each pattern needs: the first "--", the second
	// a phrase starting with one of these letters after ">* ".
	t := strings.TrimLeft(m, ">* ")
	if !strings.Contains(m, "--") {
		if r, _ := utf8.DecodeRuneInString(t); !strings.ContainsRune("bdicavн転", r) {
			return false
		}
	}
	for _, re := range markerRes {
		if re.MatchString(m) {
			return true
		}
	}
	return false
}

// Attributions ("On <date>, <name> wrote:") in the languages of the
// corpus and the clients' other common locales. The verb must end the
// line (optionally followed by the writer's address, as Gmail writes
// "Am … schrieb Name <addr>:" and "Den … skrev Name <addr>:"), so a
// sentence that merely contains "wrote" is not one.
const (
	latinVerbs = `wrote|writes|a écrit|a ecrit|écrit|schrieb|hat geschrieben|het volgende geschreven|geschrieben|` +
		`schreef|geschreven|escribió|escribio|ha scritto|scrisse|napisał|napisała|napisal|napisala|` +
		`napsal|napsala|написал|написала|написав|пишет|пише|skrev|escreveu|kirjoitti|yazdı|` +
		`írta|έγραψε|a scris|je napisao|je napisala|rašė|rakstīja|kirjutas|đã viết`
	cjkVerbs = `写道|寫道|のメール|書きました|작성`
	// namedVerbs may be followed by the writer's name.
	namedVerbs = `wrote|schrieb|skrev|schreef|a écrit|escribió|escreveu|ha scritto|napisał|napsal|написал`
	// verbDatePhrases put the date after the verb.
	verbDatePhrases = `wrote on|schrieb am|a écrit le|escribió el|ha scritto il|skrev den|schreef op|napisał w dniu|написал`
	verbPre         = `(?:^|[ "'>)\]»,.;])`
	verbBoundary    = ` "'>)]»,.;`
)

var (
	// "Am 3. Apr. 2012 um 16:19 schrieb Bob <bob@example.com>:"
	attribNameAfterRe = regexp.MustCompile(verbPre + `(?:` + latinVerbs + `) [^:：]{1,120}?(?:<[^<>]*@[^<>]*>|\([^()]*@[^()]*\)|[^ <>()]+@[^ <>()]+) ?[:：]$`)
	// "Am 03.04.2012 16:19, schrieb Bob Smith:" (Thunderbird): a known
	// start, the verb, then a name without an address.
	attribNamePlainRe = regexp.MustCompile(`^[-*> ]*(?:on|am|den|op|le|el|il|em|dnia|w dniu|dne) .{0,160}[ ,](?:` +
		namedVerbs + `) [^:：,.;!?]{1,60}[:：]$`)
	// "Bob <bob@example.com> schrieb am Fr., 28. Apr. 2017 um 11:53 Uhr:"
	attribVerbDateRe = regexp.MustCompile(verbPre + `(?:` + verbDatePhrases + `) .{1,80}[:：]$`)
	// "26.06.2014, 14:41, "Alexander L" <abc@example.com>:" (Yandex,
	// Gmail in Russian, Japanese, …): a date, a name and an address.
	attribDateAddrRe = regexp.MustCompile(`(?:<[^<> ]+@[^<> ]+>|\([^() ]+@[^() ]+\)|"?[^ <>()"]+@[^ <>()"]+\.[^ <>()":]+"?) ?[:：]$`)

	timeRe = regexp.MustCompile(`\d{1,2} ?[:.h：] ?\d{2}`)
	yearRe = regexp.MustCompile(`(?:^|\D)(?:19|20)\d{2}(?:\D|$)`)
	dateRe = regexp.MustCompile(`\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d+ ?[年월日]`)

	// joinAnchorRe is how an attribution wrapped over several lines may
	// begin. Only these are joined: a wrapped attribution needs a known
	// start, or any paragraph ending "... wrote:" would be eaten.
	joinAnchorRe = regexp.MustCompile(`^[-*> ]*(?:On|Le|Am|Op|El|Il|Em|Den|Dnia|W dniu|Dne|Vào|Il giorno|在|於|\d)`)
)

// attribution classifies m (a match form, lower-cased) as a strong or
// weak attribution, or kText. All patterns are anchored at the end of
// the line, so they only ever look at its last couple of hundred bytes.
func attribution(m string) kind {
	if len(m) > 400 || !colonEnd(m) {
		return kText
	}
	tail := lastBytes(m, 240)
	at, verb := verbAtEnd(tail)
	if !verb && strings.Contains(tail, "@") && containsAny(tail, latinVerbs) {
		verb = attribNameAfterRe.MatchString(tail)
	}
	if !verb && containsAny(tail, verbDatePhrases) {
		verb = attribVerbDateRe.MatchString(tail)
	}
	if !verb && containsAny(tail, namedVerbs) {
		verb = attribNamePlainRe.MatchString(m)
	}
	if !verb {
		if strings.Contains(tail, "@") && timeRe.MatchString(m) && attribDateAddrRe.MatchString(tail) && headerField(m) == 0 {
			return kAttrib
		}
		return kText
	}
	if at >= 0 && selfQuote(tail[:at]) {
		return kAttribWeak
	}
	if strings.Contains(m, "@") || timeRe.MatchString(m) || yearRe.MatchString(m) || dateRe.MatchString(m) {
		return kAttrib
	}
	return kAttribWeak
}

// firstPerson are the pronouns that make "On 3 May 2020 I wrote:" the
// writer talking about their own text rather than a client's attribution.
var firstPerson = map[string]bool{
	"i": true, "we": true, "ich": true, "wir": true, "je": true, "j'ai": true, "nous": true,
	"yo": true, "io": true, "ik": true, "wij": true, "jag": true, "vi": true, "eu": true,
	"я": true, "мы": true, "ja": true, "my": true,
}

// selfQuote reports whether the words before an attribution's verb end
// with a first-person pronoun.
func selfQuote(before string) bool {
	f := strings.Fields(before)
	if len(f) == 0 {
		return false
	}
	w := strings.Trim(f[len(f)-1], ",;\"'")
	return firstPerson[w]
}

// verbAtEnd reports whether m (lower-cased, ending with a colon) ends
// with an attribution verb ("… wrote:", "… napisał(a):", "… 写道："),
// and where the verb starts (-1 for the CJK verbs, which need no word
// boundary). It is a suffix test rather than a regular expression: this
// runs on every line that ends with a colon.
func verbAtEnd(m string) (int, bool) {
	t := strings.TrimRight(m, " ")
	switch {
	case strings.HasSuffix(t, ":"):
		t = t[:len(t)-1]
	case strings.HasSuffix(t, "："):
		t = t[:len(t)-len("：")]
	default:
		return 0, false
	}
	t = strings.TrimRight(t, " ")
	for _, suf := range []string{"(a)", "(а)", "(la)"} {
		if strings.HasSuffix(t, suf) {
			t = strings.TrimRight(t[:len(t)-len(suf)], " ")
			break
		}
	}
	for v := range strings.SplitSeq(cjkVerbs, "|") {
		if strings.HasSuffix(t, v) {
			return -1, true
		}
	}
	for v := range strings.SplitSeq(latinVerbs, "|") {
		if !strings.HasSuffix(t, v) {
			continue
		}
		i := len(t) - len(v)
		if i == 0 {
			return 0, true
		}
		if r, _ := utf8.DecodeLastRuneInString(t[:i]); strings.ContainsRune(verbBoundary, r) {
			return i, true
		}
	}
	return 0, false
}

// colonEnd reports whether m ends with a colon, as attributions do.
func colonEnd(m string) bool {
	return strings.HasSuffix(m, ":") || strings.HasSuffix(m, "：")
}

// lastBytes returns the end of s, at most n bytes, cut at a word
// boundary.
func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := len(s) - n
	if sp := strings.IndexByte(s[cut:], ' '); sp >= 0 {
		return s[cut+sp:]
	}
	for cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut++
	}
	return s[cut:]
}

// endsSentence reports whether a line ends a sentence, which a line in
// the middle of a wrapped attribution does not.
func endsSentence(m string) bool {
	if m == "" {
		return true
	}
	r, _ := utf8.DecodeLastRuneInString(m)
	return strings.ContainsRune(".!?:：。！？", r)
}

// "-Abhishek Kona": github/email_reply_parser's "-\w" sign-off, limited
// to a capitalised name of up to three words so that a "-fix the bug"
// list item is not one.
var dashNameRe = regexp.MustCompile(`^(?:-|--)\p{Lu}[\p{L}\p{M}.'’-]*(?: \p{Lu}[\p{L}\p{M}.'’-]*){0,2}$`)

var (
	emailRe = regexp.MustCompile(`[\w.+-]+@[\w-]+(?:\.[\w-]+)+`)
	urlRe   = regexp.MustCompile(`(?i)(?:https?://|www\.)\S+`)
	phoneRe = regexp.MustCompile(`\+?\(?\d[\d ().-]{6,}\d`)
	// isoDateRe keeps "2010-12-31" from counting as a phone number.
	isoDateRe = regexp.MustCompile(`^\d{4}[./-]\d{1,2}[./-]\d{1,2}$`)
)

// contactKind says whether a short line is an address, a URL or a phone
// number (bit 1, 2, 4), as signature blocks list them.
func contactKind(m string) int {
	k := 0
	if emailRe.MatchString(m) {
		k |= 1
	} else if urlRe.MatchString(m) {
		k |= 2
	}
	if p := phoneRe.FindString(m); p != "" && !dateRe.MatchString(p) && !isoDateRe.MatchString(p) {
		digits := 0
		for _, r := range p {
			if r >= '0' && r <= '9' {
				digits++
			}
		}
		if digits >= 7 {
			k |= 4
		}
	}
	return k
}

// nameLike reports a short line that reads like a name or a title
// ("Gina Xxxxxxxxx", "John E. Doe, Ph.D."): at most maxWords words, most
// of them capitalised, not ending like a sentence or a question.
func nameLike(m string, maxWords int) bool {
	f := strings.Fields(m)
	if len(f) == 0 || len(f) > maxWords || utf8.RuneCountInString(m) > 60 {
		return false
	}
	if r, _ := utf8.DecodeLastRuneInString(m); strings.ContainsRune("!?:;", r) {
		return false
	}
	upper := 0
	for _, w := range f {
		r, _ := utf8.DecodeRuneInString(w)
		if !unicode.IsLetter(r) || unicode.IsUpper(r) || unicode.Is(unicode.Lo, r) {
			upper++
		}
	}
	return upper*2 > len(f)
}
