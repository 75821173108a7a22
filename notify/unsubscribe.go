package notify

import (
	"context"
	"errors"
	"fmt"

	"github.com/trackerd/trackerd/store"
)

// ErrBadToken is Unsubscribe's answer to a token that is not a stored
// unsubscribe token (unknown, mistyped, or a bounce token).
var ErrBadToken = errors.New("notify: no such unsubscribe token")

// Unsubscribe takes the user an unsubscribe token names off the nosy list
// of the token's issue: the one-click https link of List-Unsubscribe (RFC
// 8058), which the web view serves as /unsubscribe/TOKEN (it must act on
// POST only). removed is false when the user was not on the list any more
// (a second click), which is not an error. The token stays valid: it
// names the same user and issue for every mail, so a later
// re-subscription can be undone the same way.
func Unsubscribe(ctx context.Context, st *store.Store, token string) (userID, issueID int64, removed bool, err error) {
	userID, issueID, err = st.Token(ctx, token)
	if errors.Is(err, store.ErrNotFound) {
		return 0, 0, false, ErrBadToken
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("notify: unsubscribe: %w", err)
	}
	if issueID == 0 {
		return userID, 0, false, fmt.Errorf("notify: unsubscribe: token of user %d names no issue", userID)
	}
	removed, err = st.RemoveNosy(ctx, issueID, userID)
	if err != nil {
		return userID, issueID, false, fmt.Errorf("notify: unsubscribe: %w", err)
	}
	return userID, issueID, removed, nil
}
