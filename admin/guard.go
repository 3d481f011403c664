package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/reeve-edge/reeve/api"
)

// The guard stands in front of every route (Server.Handler). The admin API
// can create and delete topics, add and remove nodes and move leaders, and
// it listens on loopback by default, so the first thing to keep out is a
// web page in an operator's browser:
//
//   - DNS rebinding: a page at evil.example re-resolves its own name to
//     127.0.0.1 and reads or writes the API as "same origin". The request
//     still says Host: evil.example, so only the names an operator reaches
//     the node by are answered (421 otherwise).
//   - Cross-site requests: a form or a no-cors fetch() can POST text/plain
//     or form-encoded bodies anywhere without a CORS preflight. A
//     state-changing request must say Content-Type: application/json
//     (which a browser sends cross-origin only after a preflight this
//     endpoint never approves), and one whose Origin or Sec-Fetch-Site
//     says it comes from another site is refused.
//
// With admin.token_file set, requests also need Authorization: Bearer
// <token>: every state-changing one, and reads too unless
// admin.public_reads. The probes (/healthz, /readyz, /livez) are always
// open and skip every check: they tell nothing and are called by
// supervisors that send whatever Host they like. The status page's three
// files are open to any allowed Host: they hold no data, and a browser
// could not send a bearer token to load them; what the page shows comes
// from the API, which asks for the token (the page then shows a form for
// it, ui/app.js).
//
// # Notes
//
// The guard keeps a digest of the token, not the token, and compares the
// digest of what a request sends with subtle.ConstantTimeCompare, so the
// time an answer takes tells nothing of the token or its length.
type guard struct {
	// token is the digest of the token requests must carry, nil when none
	// is configured; a reload swaps it (Server.SetToken).
	token       atomic.Pointer[[sha256.Size]byte]
	publicReads bool
	// hosts are the lower-case names and addresses a Host header or
	// Origin may carry besides loopback addresses: localhost, the listen
	// address's host and admin.allowed_hosts.
	hosts map[string]bool
	// anyIP is set when the endpoint listens on a wildcard address: then
	// any IP address is a name it is reached by. A rebinding page always
	// sends a name, never an address, so this lets nothing in.
	anyIP bool
	log   *slog.Logger
}

// newGuard builds the guard for an endpoint listening on listen.
func newGuard(listen string, n Node) *guard {
	g := &guard{publicReads: n.PublicReads, hosts: map[string]bool{"localhost": true}, log: n.Log}
	g.setToken(n.Token)
	host := hostOnly(listen)
	if a, err := netip.ParseAddr(host); host == "" || err == nil && a.IsUnspecified() {
		g.anyIP = true
	} else {
		g.hosts[host] = true
	}
	for _, h := range n.AllowedHosts {
		g.hosts[hostOnly(h)] = true
	}
	return g
}

// hostOnly is the lower-case host of "host", "host:port", "[v6]" or
// "[v6]:port", without a trailing dot.
func hostOnly(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// allowedHost reports whether host (from hostOnly) names this node.
func (g *guard) allowedHost(host string) bool {
	if host == "" {
		return false
	}
	if g.hosts[host] {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && (a.IsLoopback() || g.anyIP)
}

// refusal is why the guard turned a request away.
type refusal struct {
	status int
	msg    string
	// challenge is the WWW-Authenticate header of a 401.
	challenge string
}

// wrap puts the guard in front of next.
func (g *guard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := g.check(r); f != nil {
			g.log.Debug("admin request refused", "method", r.Method, "path", r.URL.Path, "host", r.Host,
				"remote", r.RemoteAddr, "status", f.status, "err", f.msg)
			if f.challenge != "" {
				w.Header().Set("WWW-Authenticate", f.challenge)
			}
			writeJSON(w, f.status, api.Error{Error: f.msg})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// check is nil for a request the guard lets through, else why not.
func (g *guard) check(r *http.Request) *refusal {
	safe := safeMethod(r.Method)
	if safe && isProbe(r.URL.Path) {
		return nil
	}
	if host := hostOnly(r.Host); !g.allowedHost(host) {
		return &refusal{status: http.StatusMisdirectedRequest, msg: fmt.Sprintf(
			"this node does not answer to the name %q; reach it by its admin.listen address, localhost or a loopback address, "+
				"or add the name to admin.allowed_hosts", host)}
	}
	if !safe {
		if f := g.checkBrowser(r); f != nil {
			return f
		}
	}
	want := g.token.Load()
	if want == nil || safe && (g.publicReads || isStatusPageFile(r.URL.Path)) {
		return nil
	}
	return g.checkToken(r, want)
}

// checkBrowser refuses a state-changing request a web page may have sent
// without the operator's intent.
func (g *guard) checkBrowser(r *http.Request) *refusal {
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return &refusal{status: http.StatusForbidden, msg: fmt.Sprintf(
			"a web page on another site (Sec-Fetch-Site: %s) may not change this cluster; use the reeve command or curl", site)}
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host == "" || !g.allowedHost(hostOnly(u.Host)) {
			return &refusal{status: http.StatusForbidden, msg: fmt.Sprintf(
				"a web page at %q may not change this cluster; use the reeve command or curl, or add the page's host to admin.allowed_hosts if it is yours",
				origin)}
		}
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return &refusal{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf(
			"Content-Type %q: send the request as JSON with Content-Type: application/json (curl: -H 'Content-Type: application/json')", ct)}
	}
	return nil
}

// checkToken refuses a request without the configured token.
func (g *guard) checkToken(r *http.Request, want *[sha256.Size]byte) *refusal {
	const challenge = `Bearer realm="reeve admin"`
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return &refusal{status: http.StatusUnauthorized, challenge: challenge, msg: "this node requires its admin token: " +
			"send Authorization: Bearer <token> with the token in the node's admin.token_file " +
			"(reeve commands: pass --token-file FILE, or -c FILE whose admin.token_file names it)"}
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
		return &refusal{status: http.StatusUnauthorized, challenge: challenge + `, error="invalid_token"`,
			msg: "the admin token sent is not this node's: send the one in the node's admin.token_file " +
				"(reeve commands: pass --token-file FILE, or -c FILE whose admin.token_file names it)"}
	}
	return nil
}

// setToken makes token the one requests must carry; "" requires none.
func (g *guard) setToken(token string) {
	if token == "" {
		g.token.Store(nil)
		return
	}
	sum := sha256.Sum256([]byte(token))
	g.token.Store(&sum)
}

// safeMethod reports whether a request with this method changes nothing
// (RFC 9110 section 9.2.1); every other method is state-changing.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == http.MethodTrace
}

// isProbe reports whether path is a health probe, always open.
func isProbe(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/livez"
}

// isStatusPageFile reports whether path is one of the status page's files
// (statuspage.go), which hold no data.
func isStatusPageFile(path string) bool {
	return path == "/" || strings.HasPrefix(path, "/ui/")
}
