package admin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"time"
)

// The status page: three small hand-written files in ui/, embedded in the
// binary and served by the admin listener at / (index.html) and /ui/NAME.
// The page loads nothing from anywhere else (the Content-Security-Policy
// below forbids it) and refreshes itself by polling the JSON API
// (/v1/status, /v1/partitions?stale=true, /v1/policies) with fetch().
//
// Only the embedded files are served: no directory listings, no paths
// outside ui/. Each answer carries an ETag (a digest of the content) and
// Cache-Control: no-cache, so a browser revalidates and picks up a new
// binary's page at once without downloading an unchanged one again.

//go:embed ui
var uiFS embed.FS

// statusPageCSP lets the page load its own script and style and talk to its
// own origin, and nothing else.
const statusPageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// uiAsset is one embedded file, read once at start.
type uiAsset struct {
	body []byte
	etag string
}

// statusPage serves the status page; server.go routes GET / and GET /ui/ to
// it.
var statusPage http.Handler = newStatusPage(uiFS)

// newStatusPage reads the files under ui/ in fsys. The folder is embedded,
// so a failure here is a build defect, not an operator's problem: it
// panics at start rather than serving a broken page.
func newStatusPage(fsys fs.FS) http.Handler {
	assets := map[string]uiAsset{}
	err := fs.WalkDir(fsys, "ui", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		assets["/"+name] = uiAsset{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err == nil && assets["/ui/index.html"].body == nil {
		err = fs.ErrNotExist
	}
	if err != nil {
		panic("admin: embedded status page: ui/index.html: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path
		if name == "/" {
			name = "/ui/index.html"
		}
		a, ok := assets[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", statusPageCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		// ServeContent sets the type from the extension and answers
		// If-None-Match with 304.
		http.ServeContent(w, r, path.Base(name), time.Time{}, bytes.NewReader(a.body))
	})
}
