package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// User is a person known to the tracker.
type User struct {
	ID       int64
	Username string
	RealName string
	// Address is the primary address: notifications go there.
	Address string
	// Alternates are further addresses of the same person, in the order
	// they were added. Mail from any of them is the user's.
	Alternates []string
	Roles      []string
	// PasswordHash is what HashPassword returns; "" means no password
	// (the user only uses mail).
	PasswordHash string
	Bouncing     bool
	BounceCount  int
	Created      time.Time
}

// userCols selects a user (aliased u) with its addresses and roles packed
// into text: alternates space-separated (an address has no spaces), roles
// comma-separated (as stored).
const userCols = `u.id, u.username, u.realname,
	COALESCE((SELECT a.address FROM addresses a WHERE a.user_id = u.id AND a.is_primary), ''),
	COALESCE((SELECT string_agg(a.address, ' ' ORDER BY a.id) FROM addresses a WHERE a.user_id = u.id AND NOT a.is_primary), ''),
	u.roles, u.password_hash, u.bouncing, u.bounce_count, u.created`

// userRow is the scan target for userCols.
type userRow struct {
	u           User
	alts, roles string
}

func (r *userRow) dest() []any {
	return []any{&r.u.ID, &r.u.Username, &r.u.RealName, &r.u.Address, &r.alts, &r.roles,
		&r.u.PasswordHash, &r.u.Bouncing, &r.u.BounceCount, timeCol{&r.u.Created}}
}

func (r *userRow) user() User {
	u := r.u
	u.Alternates = splitList(r.alts, " ")
	u.Roles = splitList(r.roles, ",")
	return u
}

// cleanAddress trims addr and returns it with its case-folded form, the key
// of address uniqueness. An address must be non-empty and hold no white
// space or control characters.
func cleanAddress(addr string) (string, string, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return "", "", errors.New("empty address")
	}
	if strings.ContainsFunc(addr, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return "", "", fmt.Errorf("address %q contains white space or control characters", addr)
	}
	return addr, strings.ToLower(addr), nil
}

// cleanRoles trims role names, drops empty ones and repeats, and refuses a
// comma (the stored separator).
func cleanRoles(roles []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, r := range roles {
		r = strings.TrimSpace(r)
		if r == "" || seen[r] {
			continue
		}
		if strings.ContainsRune(r, ',') {
			return nil, fmt.Errorf("role %q contains a comma", r)
		}
		seen[r] = true
		out = append(out, r)
	}
	return out, nil
}

// CreateUser adds u with its primary and alternate addresses, and sets
// u.ID and u.Created (now, unless set). Addresses are trimmed; alternates
// that repeat another of u's addresses are dropped. An empty Username
// becomes the primary address (see FreeUsername for a nicer one).
//
// ErrDuplicate: the username is taken, or an address belongs to another
// user (both compared case-insensitively; an address as primary or
// alternate).
// Nothing is written then.
func (c *conn) CreateUser(ctx context.Context, u *User) error {
	addr, lower, err := cleanAddress(u.Address)
	if err != nil {
		return fail("create user", err)
	}
	type addrRow struct {
		addr, lower string
		primary     bool
	}
	rows := []addrRow{{addr, lower, true}}
	seen := map[string]bool{lower: true}
	var alts []string
	for _, a := range u.Alternates {
		a, l, err := cleanAddress(a)
		if err != nil {
			return fail("create user", err)
		}
		if seen[l] {
			continue
		}
		seen[l] = true
		rows = append(rows, addrRow{a, l, false})
		alts = append(alts, a)
	}
	roles, err := cleanRoles(u.Roles)
	if err != nil {
		return fail("create user", err)
	}
	username := strings.TrimSpace(u.Username)
	if username == "" {
		username = addr
	}
	created := orNow(u.Created)

	var id int64
	err = c.atomic(ctx, func(c *conn) error {
		err := c.get(ctx, `INSERT INTO users (username, username_lower, realname, roles, password_hash, bouncing, bounce_count, created)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING id`,
			[]any{username, strings.ToLower(username), u.RealName, strings.Join(roles, ","), u.PasswordHash, u.Bouncing, u.BounceCount, c.d.tm(created)}, &id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("username %q: %w", username, ErrDuplicate)
		}
		if err != nil {
			return err
		}
		for _, r := range rows {
			var aid int64
			err := c.get(ctx, `INSERT INTO addresses (user_id, address, address_lower, is_primary)
				VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING id`,
				[]any{id, r.addr, r.lower, r.primary}, &aid)
			if errors.Is(err, sql.ErrNoRows) {
				// Undo this call's rows: in a Tx, the caller may go on.
				if _, err := c.exec(ctx, `DELETE FROM users WHERE id = $1`, id); err != nil {
					return err
				}
				return fmt.Errorf("address %s: %w", r.addr, ErrDuplicate)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fail("create user", err)
	}
	u.ID, u.Username, u.Address, u.Alternates, u.Roles, u.Created = id, username, addr, alts, roles, created
	return nil
}

// user reads one user; where filters users aliased u.
func (c *conn) user(ctx context.Context, where string, args ...any) (*User, error) {
	var r userRow
	if err := c.get(ctx, `SELECT `+userCols+` FROM users u `+where, args, r.dest()...); err != nil {
		return nil, err
	}
	u := r.user()
	return &u, nil
}

// users reads the users that from (a FROM … WHERE … ORDER BY … clause over
// users aliased u) selects.
func (c *conn) users(ctx context.Context, from string, args ...any) ([]User, error) {
	var out []User
	err := c.each(ctx, `SELECT `+userCols+` `+from, args, func(rows *sql.Rows) error {
		var r userRow
		if err := rows.Scan(r.dest()...); err != nil {
			return err
		}
		out = append(out, r.user())
		return nil
	})
	return out, err
}

// UserByID returns the user, or ErrNotFound.
func (c *conn) UserByID(ctx context.Context, id int64) (*User, error) {
	u, err := c.user(ctx, `WHERE u.id = $1`, id)
	if err != nil {
		return nil, fail(fmt.Sprintf("user %d", id), err)
	}
	return u, nil
}

// UserByAddress returns the user one of whose addresses, primary or
// alternate, is addr compared case-insensitively; or ErrNotFound.
func (c *conn) UserByAddress(ctx context.Context, addr string) (*User, error) {
	lower := strings.ToLower(strings.TrimSpace(addr))
	u, err := c.user(ctx, `WHERE u.id = (SELECT a.user_id FROM addresses a WHERE a.address_lower = $1)`, lower)
	if err != nil {
		return nil, fail("user by address "+addr, err)
	}
	return u, nil
}

// UserByUsername returns the user with this username (compared
// case-insensitively), or ErrNotFound.
func (c *conn) UserByUsername(ctx context.Context, username string) (*User, error) {
	u, err := c.user(ctx, `WHERE u.username_lower = $1`, strings.ToLower(strings.TrimSpace(username)))
	if err != nil {
		return nil, fail("user by username "+username, err)
	}
	return u, nil
}

// ListUsers returns users ordered by id, at most limit of them (0 = all).
func (c *conn) ListUsers(ctx context.Context, limit int) ([]User, error) {
	us, err := c.users(ctx, `FROM users u ORDER BY u.id LIMIT $1`, limitArg(limit))
	if err != nil {
		return nil, fail("list users", err)
	}
	return us, nil
}

// UpdateUser stores u's real name, roles, password hash, bouncing flag and
// bounce count. Username, addresses and Created are not changed here (see
// AddAddress, RemoveAddress). ErrNotFound if there is no user u.ID.
func (c *conn) UpdateUser(ctx context.Context, u *User) error {
	roles, err := cleanRoles(u.Roles)
	if err != nil {
		return fail("update user", err)
	}
	err = c.affected(ctx, `UPDATE users SET realname = $1, roles = $2, password_hash = $3, bouncing = $4, bounce_count = $5 WHERE id = $6`,
		u.RealName, strings.Join(roles, ","), u.PasswordHash, u.Bouncing, u.BounceCount, u.ID)
	if err != nil {
		return fail(fmt.Sprintf("update user %d", u.ID), err)
	}
	u.Roles = roles
	return nil
}

// AddAddress gives user userID the alternate address addr. Adding an
// address the user already has is a no-op. ErrDuplicate if another user
// has it (compared case-insensitively); ErrNotFound if there is no such
// user.
func (c *conn) AddAddress(ctx context.Context, userID int64, addr string) error {
	addr, lower, err := cleanAddress(addr)
	if err != nil {
		return fail("add address", err)
	}
	err = c.atomic(ctx, func(c *conn) error {
		var one int
		if err := c.get(ctx, `SELECT 1 FROM users WHERE id = $1`, []any{userID}, &one); err != nil {
			return err
		}
		var id int64
		err := c.get(ctx, `INSERT INTO addresses (user_id, address, address_lower, is_primary)
			VALUES ($1, $2, $3, FALSE) ON CONFLICT DO NOTHING RETURNING id`, []any{userID, addr, lower}, &id)
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var owner int64
		if err := c.get(ctx, `SELECT user_id FROM addresses WHERE address_lower = $1`, []any{lower}, &owner); err != nil {
			return err
		}
		if owner != userID {
			return fmt.Errorf("address %s: %w", addr, ErrDuplicate)
		}
		return nil
	})
	if err != nil {
		return fail(fmt.Sprintf("add address to user %d", userID), err)
	}
	return nil
}

// RemoveAddress takes the alternate address addr (compared
// case-insensitively) from user userID. ErrNotFound if the user has no
// such alternate; a primary address cannot be removed.
func (c *conn) RemoveAddress(ctx context.Context, userID int64, addr string) error {
	lower := strings.ToLower(strings.TrimSpace(addr))
	err := c.affected(ctx, `DELETE FROM addresses WHERE user_id = $1 AND address_lower = $2 AND NOT is_primary`, userID, lower)
	if err != nil {
		return fail(fmt.Sprintf("remove address %s from user %d", addr, userID), err)
	}
	return nil
}

// FreeUsername returns base in lower case if no user has that username
// (compared case-insensitively), else the first of base2, base3, … that is
// free. An empty base is "user". It reserves nothing: call it in the Tx
// that creates the user (CreateUser still reports ErrDuplicate if another
// writer took the name meanwhile).
func (c *conn) FreeUsername(ctx context.Context, base string) (string, error) {
	base = strings.ToLower(strings.TrimSpace(base))
	if base == "" {
		base = "user"
	}
	for i := 1; i <= 10000; i++ {
		name := base
		if i > 1 {
			name += strconv.Itoa(i)
		}
		var n int
		if err := c.get(ctx, `SELECT COUNT(*) FROM users WHERE username_lower = $1`, []any{name}, &n); err != nil {
			return "", fail("free username", err)
		}
		if n == 0 {
			return name, nil
		}
	}
	return "", fail("free username", fmt.Errorf("no free username like %q", base))
}
