package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/trackerd/trackerd/store"
	"github.com/trackerd/trackerd/web"
)

const userUsage = `user add ADDRESS [-name NAME] [-username U] [-roles user,admin]
       user list [-json] [-limit N]
       user show ADDRESS [-json]
       user set ADDRESS [-name NAME] [-roles ROLES] [-password-file F] [-clear-bouncing]
       user address add|remove ADDRESS ALTERNATE`

// knownRoles are the roles a user may have: "user" may write to the
// tracker, "admin" may also change what only admins may (later issues).
var knownRoles = map[string]bool{"user": true, "admin": true}

func cmdUser(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("user")
	name := fs.String("name", "", "real name")
	username := fs.String("username", "", "username (default: from the address's local part)")
	roles := fs.String("roles", "", "comma-separated roles: user, admin (default for add: user)")
	passwordFile := fs.String("password-file", "", "set: read the web password from this file (first line)")
	asJSON := fs.Bool("json", false, "print JSON (DESIGN §3 shape)")
	limit := fs.Int("limit", 0, "list: print at most N users (0: all)")
	clearBouncing := fs.Bool("clear-bouncing", false, "set: mail the address again (clear its bouncing mark and count)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErrorf("usage: trackerd %s", userUsage)
	}
	var roleList []string
	if *roles != "" {
		roleList = splitList(*roles)
		for _, r := range roleList {
			if !knownRoles[r] {
				return usageErrorf("unknown role %q (known: user, admin)", r)
			}
		}
	}
	_, st, err := a.loadStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()

	switch pos[0] {
	case "add":
		if err := needArgs(pos, 2, "user add ADDRESS [-name NAME] [-username U] [-roles user,admin]"); err != nil {
			return err
		}
		addr, err := parseAddress(pos[1])
		if err != nil {
			return err
		}
		if roleList == nil {
			roleList = []string{"user"}
		}
		u := &store.User{Address: addr, RealName: *name, Username: *username, Roles: roleList}
		err = st.Tx(ctx, func(tx *store.Tx) error {
			if u.Username == "" {
				local, _, _ := strings.Cut(addr, "@")
				un, err := tx.FreeUsername(ctx, local)
				if err != nil {
					return err
				}
				u.Username = un
			}
			return tx.CreateUser(ctx, u)
		})
		if errors.Is(err, store.ErrDuplicate) {
			return fmt.Errorf("user add: %s or username %q is already taken", addr, u.Username)
		}
		if err != nil {
			return fmt.Errorf("user add: %w", err)
		}
		fmt.Fprintf(a.stdout, "added user %d %s <%s>\n", u.ID, u.Username, u.Address)
		return nil

	case "list":
		if err := needArgs(pos, 1, "user list [-json] [-limit N]"); err != nil {
			return err
		}
		users, err := st.ListUsers(ctx, *limit)
		if err != nil {
			return fmt.Errorf("user list: %w", err)
		}
		if *asJSON {
			out := make([]web.User, 0, len(users))
			for i := range users {
				out = append(out, web.NewUser(&users[i]))
			}
			return writeJSON(a, out)
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSERNAME\tADDRESS\tNAME\tROLES")
		for _, u := range users {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", u.ID, u.Username, u.Address, u.RealName, strings.Join(u.Roles, ","))
		}
		return tw.Flush()

	case "show":
		if err := needArgs(pos, 2, "user show ADDRESS [-json]"); err != nil {
			return err
		}
		u, err := userByAddress(ctx, st, pos[1])
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(a, web.NewUser(u))
		}
		bounces, err := st.Bounces(ctx, u.ID, 5)
		if err != nil {
			return fmt.Errorf("user show: %w", err)
		}
		fmt.Fprintf(a.stdout, "id:         %d\nusername:   %s\nname:       %s\naddress:    %s\nalternates: %s\nroles:      %s\npassword:   %s\nbouncing:   %s\ncreated:    %s\n",
			u.ID, u.Username, u.RealName, u.Address, strings.Join(u.Alternates, ", "),
			strings.Join(u.Roles, ","), yesNo(u.PasswordHash != ""), bouncingText(u),
			u.Created.UTC().Format("2006-01-02T15:04:05Z07:00"))
		for _, b := range bounces {
			kind := "soft"
			if b.Hard {
				kind = "hard"
			}
			fmt.Fprintf(a.stdout, "bounce:     %s %s %s issue=%d inbound=%d %s\n", b.Created.UTC().Format("2006-01-02T15:04:05Z07:00"),
				kind, orDash(b.Status), b.IssueID, b.InboundID, b.MessageID)
		}
		return nil

	case "set":
		if err := needArgs(pos, 2, "user set ADDRESS [-name NAME] [-roles ROLES] [-password-file F]"); err != nil {
			return err
		}
		var hash string
		if *passwordFile != "" {
			pw, err := readPassword(*passwordFile)
			if err != nil {
				return err
			}
			if hash, err = store.HashPassword(pw); err != nil {
				return fmt.Errorf("user set: %w", err)
			}
		}
		err := st.Tx(ctx, func(tx *store.Tx) error {
			u, err := userByAddress(ctx, tx, pos[1])
			if err != nil {
				return err
			}
			if *name != "" {
				u.RealName = *name
			}
			if roleList != nil {
				u.Roles = roleList
			}
			if hash != "" {
				u.PasswordHash = hash
			}
			if *clearBouncing {
				u.Bouncing, u.BounceCount = false, 0
			}
			return tx.UpdateUser(ctx, u)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "updated %s\n", pos[1])
		return nil

	case "address":
		if len(pos) != 4 || (pos[1] != "add" && pos[1] != "remove") {
			return usageErrorf("usage: trackerd user address add|remove ADDRESS ALTERNATE")
		}
		alt, err := parseAddress(pos[3])
		if err != nil {
			return err
		}
		err = st.Tx(ctx, func(tx *store.Tx) error {
			u, err := userByAddress(ctx, tx, pos[2])
			if err != nil {
				return err
			}
			if pos[1] == "add" {
				return tx.AddAddress(ctx, u.ID, alt)
			}
			return tx.RemoveAddress(ctx, u.ID, alt)
		})
		switch {
		case errors.Is(err, store.ErrDuplicate):
			return fmt.Errorf("user address add: %s already belongs to a user", alt)
		case errors.Is(err, store.ErrNotFound) && pos[1] == "remove":
			return fmt.Errorf("user address remove: %s is not an alternate address of %s", alt, pos[2])
		case err != nil:
			return err
		}
		fmt.Fprintf(a.stdout, "%s %s for %s\n", map[string]string{"add": "added", "remove": "removed"}[pos[1]], alt, pos[2])
		return nil
	}
	return usageErrorf("usage: trackerd %s", userUsage)
}

// userLookup is what userByAddress needs: *store.Store and *store.Tx.
type userLookup interface {
	UserByAddress(ctx context.Context, addr string) (*store.User, error)
}

func userByAddress(ctx context.Context, st userLookup, addr string) (*store.User, error) {
	u, err := st.UserByAddress(ctx, addr)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("no user has the address %s", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("find user %s: %w", addr, err)
	}
	return u, nil
}

// parseAddress accepts a bare address or "Name <address>" and returns the
// bare address.
func parseAddress(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", usageErrorf("%q is not an email address: %v", s, err)
	}
	if !strings.Contains(a.Address, "@") {
		return "", usageErrorf("%q is not an email address: no domain", s)
	}
	return a.Address, nil
}

// readPassword reads the first line of a password file.
func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read password file: %w", err)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimRight(pw, "\r")
	if pw == "" {
		return "", fmt.Errorf("password file %s: the first line is empty", path)
	}
	return pw, nil
}

func writeJSON(a *app, v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// bouncingText says whether mail to u bounces: "no", "no (1 hard bounce
// in a row)", or "YES: 3 hard bounces in a row, no notifications are
// sent (user set ADDRESS -clear-bouncing)".
func bouncingText(u *store.User) string {
	plural := "s"
	if u.BounceCount == 1 {
		plural = ""
	}
	switch {
	case u.Bouncing:
		return fmt.Sprintf("YES: %d hard bounce%s in a row; no notifications are sent until mail from the address comes in (or user set %s -clear-bouncing)",
			u.BounceCount, plural, u.Address)
	case u.BounceCount > 0:
		return fmt.Sprintf("no (%d hard bounce%s in a row)", u.BounceCount, plural)
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "set"
	}
	return "none"
}
