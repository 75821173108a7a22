package config

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Load reads the TOML file at path over Default, reads the secrets its
// *_file keys name, and validates the result. Relative file keys
// (*_file, tls_cert, tls_key) are resolved against the directory of path;
// data_dir and a sqlite dsn stay relative to the working directory. A
// file that cannot be read is returned as a wrapped error; everything
// wrong with its content comes back at once as a *ValidationError.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, filepath.Dir(path))
}

// Parse is Load on data already read: Default, then the TOML in data,
// then secrets, then Validate. Relative file keys (*_file, tls_cert,
// tls_key) are resolved against baseDir, normally the config file's
// directory, and stored resolved; with baseDir "" they stay relative to
// the working directory, as data_dir and a sqlite dsn always do. Unknown
// keys, values of the wrong type, unreadable secret files and invalid
// values are all reported in one *ValidationError; only a TOML syntax
// error stops the checks early.
func Parse(data []byte, baseDir string) (*Config, error) {
	c := Default()
	ve := &ValidationError{}
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			ve.add(pe.LastKey, "", "TOML syntax error on line %d: %s", pe.Position.Line, pe.Message)
		} else {
			ve.add("", "", "%v", err)
		}
		return nil, ve
	}
	d := decoder{md: md, ve: ve}
	d.fields(top, reflect.ValueOf(c).Elem(), "")
	c.readFiles(baseDir, ve)
	c.validate(ve)
	if len(ve.Problems) > 0 {
		return nil, ve
	}
	return c, nil
}

// decoder decodes a TOML document one key at a time into a struct, so
// that one bad value (a wrong type, an invalid duration) is one problem
// and does not hide the others, and so that unknown keys are found with
// their full path.
type decoder struct {
	md toml.MetaData
	ve *ValidationError
}

// table decodes the TOML table p into the struct dst.
func (d *decoder) table(p toml.Primitive, dst reflect.Value, path string) {
	var raw any
	if err := d.md.PrimitiveDecode(p, &raw); err != nil {
		d.ve.add(path, "", "%v", err)
		return
	}
	var keys map[string]toml.Primitive
	if _, ok := raw.(map[string]any); !ok {
		// PrimitiveDecode into a map ignores a non-table value.
		d.ve.add(path, "", "must be a table, not %s", tomlType(raw))
		return
	}
	if err := d.md.PrimitiveDecode(p, &keys); err != nil {
		d.ve.add(path, "", "%v", err)
		return
	}
	d.fields(keys, dst, path)
}

// fields decodes keys into the fields of the struct dst, whose path (""
// at the top) prefixes every key reported.
func (d *decoder) fields(keys map[string]toml.Primitive, dst reflect.Value, path string) {
	var known []string
	t := dst.Type()
	for i := range t.NumField() {
		name := t.Field(i).Tag.Get("toml")
		if name == "-" {
			continue
		}
		known = append(known, name)
		p, ok := keys[name]
		if !ok {
			continue
		}
		key := join(path, name)
		f := dst.Field(i)
		switch {
		case f.Kind() == reflect.Struct:
			d.table(p, f, key)
		case f.Type() == reflect.TypeFor[[]Poll]():
			d.polls(p, f, key)
		default:
			d.leaf(p, f, key)
		}
	}
	var unknown []string
	for k := range keys {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		d.ve.add(join(path, k), suggest(k, known), "unknown key")
	}
}

// polls decodes the [[poll]] array of tables; each entry starts from
// defaultPoll. No entries leave dst nil.
func (d *decoder) polls(p toml.Primitive, dst reflect.Value, key string) {
	var elems []toml.Primitive
	if err := d.md.PrimitiveDecode(p, &elems); err != nil {
		d.ve.add(key, "write each mailbox as a [[poll]] table", "must be an array of tables")
		return
	}
	var polls []Poll
	for i, e := range elems {
		pl := defaultPoll()
		d.table(e, reflect.ValueOf(&pl).Elem(), fmt.Sprintf("%s[%d]", key, i))
		polls = append(polls, pl)
	}
	dst.Set(reflect.ValueOf(polls))
}

// leaf decodes one value into dst, which keeps its value on failure.
func (d *decoder) leaf(p toml.Primitive, dst reflect.Value, key string) {
	v := reflect.New(dst.Type())
	err := d.md.PrimitiveDecode(p, v.Interface())
	if err == nil {
		dst.Set(v.Elem())
		return
	}
	want, hint := describe(dst.Type())
	var pe toml.ParseError
	if errors.As(err, &pe) { // an UnmarshalText error
		d.ve.add(key, hint, "%s", pe.Message)
		return
	}
	var raw any
	if err := d.md.PrimitiveDecode(p, &raw); err != nil {
		raw = nil
	}
	d.ve.add(key, hint, "must be %s, not %s", want, tomlType(raw))
}

// describe names what a field of type t wants, with a hint when one helps.
func describe(t reflect.Type) (want, hint string) {
	switch {
	case t == reflect.TypeFor[Duration]():
		return "a duration string", `use Go duration syntax such as "90s", "5m" or "1h30m"`
	case t.Kind() == reflect.String:
		return "a string", ""
	case t.Kind() == reflect.Bool:
		return "a boolean", "true or false, without quotes"
	case t.Kind() == reflect.Int, t.Kind() == reflect.Int64:
		return "an integer", "a number without quotes"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return "an array of strings", `as in ["a", "b"]`
	}
	return t.String(), ""
}

// tomlType names the TOML type of a decoded value.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case time.Time:
		return "a date-time"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest returns a hint for the unknown key k among the known keys.
func suggest(k string, known []string) string {
	if slices.Contains(known, k+"_file") {
		return fmt.Sprintf("secrets are read from files: use %q", k+"_file")
	}
	best, bestDist := "", 3
	for _, c := range known {
		if dist := levenshtein(strings.ToLower(k), c); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("did you mean %q?", best)
}

// levenshtein returns the edit distance between a and b, in bytes.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// readFiles resolves the file keys against baseDir and reads the
// secrets they name into the toml:"-" fields, adding a problem for each
// file that cannot be read.
func (c *Config) readFiles(baseDir string, ve *ValidationError) {
	resolve := func(p *string) {
		if *p != "" && baseDir != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(baseDir, *p)
		}
	}
	read := func(key string, path *string) ([]byte, bool) {
		resolve(path)
		if *path == "" {
			return nil, false
		}
		b, err := os.ReadFile(*path)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			ve.add(key, "", "cannot read %q: %v", *path, err)
			return nil, false
		}
		if len(strings.TrimSpace(string(b))) == 0 {
			ve.add(key, "", "file %q is empty", *path)
			return nil, false
		}
		return b, true
	}
	secret := func(key string, path, dst *string) {
		if b, ok := read(key, path); ok {
			*dst = strings.TrimRight(string(b), "\r\n")
		}
	}

	resolve(&c.SMTP.TLSCert)
	resolve(&c.SMTP.TLSKey)
	if c.Store.DSNFile != "" && c.Store.DSN != "" {
		ve.add("store.dsn_file", "remove one of them", "dsn and dsn_file are both set")
		resolve(&c.Store.DSNFile)
	} else {
		secret("store.dsn_file", &c.Store.DSNFile, &c.Store.DSN)
	}
	for i := range c.Poll {
		p := &c.Poll[i]
		secret(fmt.Sprintf("poll[%d].password_file", i), &p.PasswordFile, &p.Password)
		secret(fmt.Sprintf("poll[%d].token_file", i), &p.TokenFile, &p.Token)
	}
	secret("outgoing.password_file", &c.Outgoing.PasswordFile, &c.Outgoing.Password)
	if b, ok := read("outgoing.dkim_key_file", &c.Outgoing.DKIMKeyFile); ok {
		if !isPrivateKey(b) {
			ve.add("outgoing.dkim_key_file", "want a PEM PKCS#1 or PKCS#8 RSA or Ed25519 private key",
				"no private key in %q", c.Outgoing.DKIMKeyFile)
		}
		c.Outgoing.DKIMKey = b
	}
}

// isPrivateKey reports whether b starts with a PEM private key Go can use.
func isPrivateKey(b []byte) bool {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return false
	}
	if _, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		return true
	}
	_, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	return err == nil
}
