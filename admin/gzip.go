package admin

import (
	"compress/gzip"
	"net/http"
	"strings"
)

// gzipped compresses the admin endpoint's answers for clients that accept
// gzip (browsers, curl --compressed, Go's http.Client, Prometheus): GET
// /v1/partitions for 1,500 partitions is 1.3 MB of JSON, which the status
// page asks for every 1.5 s, over what may be a site's slow uplink.
// Range requests and answers without a body pass through unchanged.
func gzipped(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" || !acceptsGzip(r.Header.Get("Accept-Encoding")) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Accept-Encoding")
		gw := &gzipWriter{ResponseWriter: w}
		defer gw.close()
		next.ServeHTTP(gw, r)
	})
}

// acceptsGzip reads an Accept-Encoding header: gzip (or *) listed without
// q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name != "gzip" && name != "*" {
			continue
		}
		q := strings.ReplaceAll(strings.ToLower(params), " ", "")
		if q == "q=0" || q == "q=0.0" || q == "q=0.00" || q == "q=0.000" {
			return false
		}
		return true
	}
	return false
}

// gzipWriter compresses the body it is given once the status allows one.
type gzipWriter struct {
	http.ResponseWriter
	z           *gzip.Writer
	wroteHeader bool
	plain       bool // no compression: no body, or already encoded
}

func (g *gzipWriter) WriteHeader(code int) {
	if g.wroteHeader {
		g.ResponseWriter.WriteHeader(code) // net/http logs the superfluous call
		return
	}
	g.wroteHeader = true
	h := g.Header()
	if code < 200 || code == http.StatusNoContent || code == http.StatusNotModified || h.Get("Content-Encoding") != "" {
		g.plain = true
	} else {
		h.Set("Content-Encoding", "gzip")
		h.Del("Content-Length") // the length of what it was before compression
	}
	g.ResponseWriter.WriteHeader(code)
}

func (g *gzipWriter) Write(b []byte) (int, error) {
	if !g.wroteHeader {
		if g.Header().Get("Content-Type") == "" {
			g.Header().Set("Content-Type", http.DetectContentType(b))
		}
		g.WriteHeader(http.StatusOK)
	}
	if g.plain {
		return g.ResponseWriter.Write(b)
	}
	if g.z == nil {
		g.z, _ = gzip.NewWriterLevel(g.ResponseWriter, gzip.BestSpeed) // a valid level: no error
	}
	return g.z.Write(b)
}

// close ends the compressed stream, if one was started.
func (g *gzipWriter) close() {
	if g.z != nil {
		g.z.Close()
	}
}
