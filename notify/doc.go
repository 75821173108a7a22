// Package notify sends the outbox: it renders outbox rows into mail
// (Render), hands the mail to a transport (Sender: Relay for an SMTP
// relay, Spool for a Maildir, DKIM wrapping either) and records the
// outcome with retries (Worker).
//
// The gateway writes the rows in the transaction that files a mail (kinds
// KindNotify and KindReply, payloads NotifyPayload and ReplyPayload); after
// the commit, Worker.Run (in serve) or Worker.Flush (in deliver and import)
// claims them, renders each outside any transaction, sends it and marks it
// sent, for a retry, or failed.
//
// # Notification headers (DESIGN §6)
//
// One mail per recipient; every copy of a message carries the same
// Message-ID, Subject and thread headers, so clients thread them and a
// resend is the same mail.
//
//	Date                      the stored message's date (the same for every
//	                          copy and every resend); for a change-only
//	                          notification the time the change was queued
//	From                      "Author Name (Tracker Name)" <tracker address>;
//	                          never the author's address (DMARC). The name is
//	                          the real name, else the username, cut at '@'
//	                          if it is an address; "Tracker Name" alone for
//	                          a change made by the tracker itself
//	Reply-To                  <local+ID@domain>
//	To                        the recipient, with their real name if known
//	Subject                   [issueID] Title
//	Message-ID                the stored message's own; for a change-only
//	                          mail the incoming mail's (payload message_id).
//	                          A stored id unusable in a header is replaced by
//	                          a stable one made from the row's data
//	In-Reply-To               the message's In-Reply-To, else the issue's
//	                          first message (none for the first message)
//	References                the first message and the parent, deduplicated,
//	                          never the message itself
//	List-Id                   "Tracker Name" <local.domain> (RFC 2919), one
//	                          id for the tracker: issues@example.org gives
//	                          <issues.example.org>
//	List-Unsubscribe          <mailto:local+ID-unsubscribe@domain>, and
//	                          <WEB_URL/unsubscribe/TOKEN> when the recipient
//	                          is a user
//	List-Unsubscribe-Post     List-Unsubscribe=One-Click, only with the web
//	                          link (RFC 8058)
//	Precedence                bulk: tells vacation responders (which read
//	                          it, unlike Auto-Submitted, on many older
//	                          systems) not to answer; our own gateway counts
//	                          it as automatic mail, which it is
//	Auto-Submitted            auto-generated (RFC 3834)
//	X-Auto-Response-Suppress  All (Exchange)
//	X-Tracker-Loop            the tracker address
//	X-Tracker-Issue           ID
//	X-Tracker-Status          the status
//	X-Tracker-Priority        the priority
//	MIME-Version, Content-*   text/plain; charset=utf-8, quoted-printable;
//	                          multipart/mixed when files are attached
//
// The envelope sender is local+bounce-TOKEN@domain when the recipient is a
// user, so a bounce names who bounced (the gateway counts it, see
// mailgw/bounce.go); for an address that is no user's (it gets mail but
// has no tokens) it is the tracker's plain address, where a bounce is
// archived and counts nothing.
//
// Error replies (KindReply) come From "Tracker Name" <tracker address>,
// To the sender, Subject "Re: ORIGINAL" (or "Your message to Tracker Name
// could not be filed"), In-Reply-To and References the refused mail, with
// Auto-Submitted: auto-replied, X-Auto-Response-Suppress: All and
// X-Tracker-Loop, a Message-ID made from the row, and the null envelope
// sender (RFC 3834 §3.3). The body states the problem, then a short help
// on the subject grammar and body commands (following the configuration);
// the refused mail is attached as message/rfc822 (message/global if it is
// not 7-bit clean; its header alone, as text/rfc822-headers, beyond
// MaxReturnedBytes).
//
// # Header safety
//
// Every header value from user data is cleaned (controls, CR and LF become
// spaces), non-ASCII text is RFC 2047-encoded (Q with only the characters
// RFC 2047 §5(3) allows in a display name left bare, or B for mostly
// non-Latin text; Go's mime.QEncoding would leave '(' and '"' bare, which
// breaks the "Author (Tracker)" phrase), long fields are folded at spaces
// within 78 characters, and Message-IDs and addresses
// that cannot be written safely are dropped or refused. File names are
// RFC 2231-encoded (with continuations) in Content-Disposition and RFC
// 2047-encoded in the Content-Type name parameter.
//
// # Tokens
//
// Unsubscribe and bounce tokens are rows in the store (store.CreateToken,
// store.CreateBounceToken), so the web view and the gateway look them up
// with store.Token and store.BounceToken. There is one token per kind,
// user and issue, reused by every mail: its value is derived, an HMAC of
// (kind, user, issue) under a secret key (DATA_DIR/TokenKeyFile, made on
// first use), so the notifier finds it again without storing a mapping,
// and creates the row the first time it renders for that user and issue
// (in the worker, outside the gateway's transaction; creation is
// idempotent, so racing workers agree). The key only makes tokens
// unguessable: a token is valid because its row exists, not because its
// HMAC checks, so losing the key invalidates nothing.
//
// # DKIM
//
// Render's output is final: CRLF, 7-bit, folded. DKIM is a Sender
// wrapping the transport: it signs Mail.Data, puts the DKIM-Signature
// field in front and calls the next Sender.
package notify
