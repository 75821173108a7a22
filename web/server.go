package web

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/internal/metrics"
	"github.com/trackerd/trackerd/store"
)

//go:embed templates/*.html static/style.css
var assets embed.FS

// csp is the Content-Security-Policy of every page: nothing but our own
// stylesheet and images loads, no script runs, no one frames us.
const csp = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// fileCSP is the policy of downloaded files: a file shown in the browser
// (a safe image) gets a sandbox besides.
const fileCSP = "default-src 'self'; frame-ancestors 'none'; sandbox"

// Server is the read-only web view (DESIGN §7): an http.Handler for every
// route. It only reads the store, except for /unsubscribe, which takes
// one person off one nosy list.
type Server struct {
	st     *store.Store
	cfg    *config.Config
	log    *slog.Logger
	pages  map[string]*template.Template
	mux    *http.ServeMux
	auth   *authCache
	css    []byte
	cssTag string // the stylesheet's version, for its cache-busting URL
	// open are the statuses not in schema.closed_statuses.
	open    []string
	metrics http.Handler
}

// New returns the web view over st, configured by cfg (which passed
// Validate). It registers nothing globally: /metrics serves
// metrics.Registry together with a collector of the store's own counts,
// read at scrape time.
func New(st *store.Store, cfg *config.Config, log *slog.Logger) (*Server, error) {
	s := &Server{st: st, cfg: cfg, log: log, pages: map[string]*template.Template{}, auth: newAuthCache()}
	closed := map[string]bool{}
	for _, c := range cfg.Schema.ClosedStatuses {
		closed[strings.ToLower(c)] = true
	}
	for _, st := range cfg.Schema.Statuses {
		if !closed[strings.ToLower(st)] {
			s.open = append(s.open, st)
		}
	}
	for _, p := range []string{"index", "issue", "unsubscribe", "error"} {
		t, err := template.New(p+".html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", p, err)
		}
		s.pages[p] = t
	}
	css, err := assets.ReadFile("static/style.css")
	if err != nil {
		return nil, fmt.Errorf("web: stylesheet: %w", err)
	}
	sum := sha256.Sum256(css)
	s.css, s.cssTag = css, hex.EncodeToString(sum[:6])

	own := prometheus.NewRegistry()
	if err := own.Register(newStoreCollector(st)); err != nil {
		return nil, fmt.Errorf("web: metrics: %w", err)
	}
	s.metrics = promhttp.HandlerFor(prometheus.Gatherers{metrics.Registry, own}, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
	})

	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", s.index)
	m.HandleFunc("GET /issue/{id}", s.issue)
	m.HandleFunc("GET /issue/{id}/feed.atom", s.issueFeed)
	m.HandleFunc("GET /file/{id}/{name...}", s.file)
	m.HandleFunc("GET /feed.atom", s.feed)
	m.HandleFunc("GET /api/issues", s.apiIssues)
	m.HandleFunc("GET /api/issues/{id}", s.apiIssue)
	m.HandleFunc("GET /unsubscribe/{token}", s.unsubscribeForm)
	m.HandleFunc("POST /unsubscribe/{token}", s.unsubscribe)
	m.HandleFunc("GET /healthz", s.healthz)
	m.Handle("GET /metrics", s.metrics)
	m.HandleFunc("GET /static/style.css", s.stylesheet)
	m.HandleFunc("/", s.fallback)
	s.mux = m
	return s, nil
}

// open routes need no password even when the view is not public: the
// token of an unsubscribe link is its own credential, and monitoring must
// reach /healthz and /metrics.
func openRoute(path string) bool {
	return path == "/healthz" || path == "/metrics" || path == "/static/style.css" || strings.HasPrefix(path, "/unsubscribe/")
}

// ServeHTTP sets the security headers, authenticates, and routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// Unsubscribe links carry a secret in their path: never send it on.
	h.Set("Referrer-Policy", "no-referrer")

	if _, _, has := r.BasicAuth(); has || (!s.cfg.Web.Public && !openRoute(r.URL.Path)) {
		u, err := s.authenticate(r)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		if u == nil {
			h.Set("WWW-Authenticate", `Basic realm="`+strings.NewReplacer(`"`, "", `\`, "").Replace(s.cfg.Tracker.Name)+`", charset="UTF-8"`)
			s.errorPage(w, r, http.StatusUnauthorized, "This tracker is not public: log in with your username (or address) and password.")
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), viewerKey{}, u))
	}
	s.mux.ServeHTTP(w, r)
}

type viewerKey struct{}

// viewer returns the authenticated user of a request, or nil.
func viewer(r *http.Request) *store.User {
	u, _ := r.Context().Value(viewerKey{}).(*store.User)
	return u
}

// designatorPath is Roundup's URL for an issue, /issue123.
var designatorPath = regexp.MustCompile(`^/issue([0-9]{1,18})$`)

// fallback answers everything no route matched: Roundup's /issue123
// redirects to /issue/123, the rest is not found.
func (s *Server) fallback(w http.ResponseWriter, r *http.Request) {
	if m := designatorPath.FindStringSubmatch(r.URL.Path); m != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		http.Redirect(w, r, "/issue/"+m[1], http.StatusMovedPermanently)
		return
	}
	s.notFound(w, r, "There is no such page.")
}

func (s *Server) stylesheet(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	if r.URL.Query().Get("v") == s.cssTag {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	w.Write(s.css)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.st.Ping(ctx); err != nil {
		s.log.Warn("healthz: store does not answer", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "store unavailable")
		return
	}
	fmt.Fprintln(w, "ok")
}

// pathID parses the {id} of a route: a positive decimal number.
func pathID(r *http.Request) (int64, bool) {
	v := r.PathValue("id")
	if v == "" || v[0] == '+' || v[0] == '0' {
		return 0, false
	}
	id, err := strconv.ParseInt(v, 10, 64)
	return id, err == nil && id > 0
}

// page is what every HTML page's layout reads.
type page struct {
	Tracker string
	Title   string
	CSS     string
	Q       string // the search box's value
	FeedURL string
	Status  int    // error pages
	Message string // error pages
	Viewer  string // the logged-in user's display name, if any
	Data    any    // the page's own data
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, status int, p page) {
	p.Tracker = s.cfg.Tracker.Name
	p.CSS = "/static/style.css?v=" + s.cssTag
	if p.FeedURL == "" {
		p.FeedURL = "/feed.atom"
	}
	if u := viewer(r); u != nil {
		p.Viewer = displayName(u)
	}
	var b strings.Builder
	if err := s.pages[name].ExecuteTemplate(&b, "layout", p); err != nil {
		s.serverError(w, r, fmt.Errorf("render %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write([]byte(b.String()))
	}
}

func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, "error", status, page{Title: http.StatusText(status), Status: status, Message: msg})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request, msg string) {
	s.errorPage(w, r, http.StatusNotFound, msg)
}

// serverError logs err and answers 500 (503 when the store timed out)
// without telling the client what failed.
func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(r.Context().Err(), context.Canceled) {
		return // the client went away
	}
	s.log.Error("web: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	status := http.StatusInternalServerError
	if errors.Is(err, context.DeadlineExceeded) {
		status = http.StatusServiceUnavailable
	}
	http.Error(w, http.StatusText(status), status)
}

var funcs = template.FuncMap{
	"date": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") },
	"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"size": humanSize,
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	},
}

// humanSize is a byte count as people read it.
func humanSize(n int64) string {
	switch {
	case n < 1024:
		return strconv.FormatInt(n, 10) + " bytes"
	case n < 1024*1024:
		return strconv.FormatFloat(float64(n)/1024, 'f', 1, 64) + " KB"
	default:
		return strconv.FormatFloat(float64(n)/(1024*1024), 'f', 1, 64) + " MB"
	}
}
