package events

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reeve-edge/reeve/config"
)

// Link is this node's connection for events: to the configured servers,
// or to a NATS server embedded in the process when none is.
type Link struct {
	conn     *nats.Conn
	embedded *server.Server // nil with an external server
	url      string
}

// eventsStream is the JetStream stream the embedded server keeps the
// events in, when embedded_jetstream is on.
const eventsStream = "REEVE_EVENTS"

// dedupWindow is how long JetStream remembers a Nats-Msg-Id: a
// republished event (after a controller crash) within it is stored once.
const dedupWindow = 2 * time.Minute

// Connect starts the embedded server if needed and connects. The
// connection retries for ever in the background: NATS being down never
// stops the node, it only holds events in the Raft outbox.
func Connect(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Link, error) {
	e := cfg.Events
	l := &Link{url: e.NATSURL}
	if e.NATSURL == "" {
		host, portText, _ := net.SplitHostPort(e.EmbeddedListen)
		port, _ := strconv.Atoi(portText)
		if port == 0 {
			port = server.RANDOM_PORT
		}
		opts := &server.Options{
			ServerName: fmt.Sprintf("reeve-%s-%d", cfg.Cluster.Name, cfg.Node.ID),
			Host:       host, Port: port, NoSigs: true, NoLog: true,
			JetStream: e.EmbeddedJetStream, StoreDir: filepath.Join(cfg.Node.DataDir, "nats"),
			// JetStream's default flushes to disk every two minutes, which
			// loses acknowledged events on power loss.
			SyncAlways:             true,
			DisableJetStreamBanner: true,
		}
		ns, err := server.NewServer(opts)
		if err != nil {
			return nil, fmt.Errorf("events: embedded NATS server: %w", err)
		}
		// Start does not block (the server's goroutines are its own, and
		// Shutdown waits for them); run in a goroutine of ours it could
		// still be starting when Close shuts the server down.
		ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			ns.Shutdown()
			return nil, fmt.Errorf("events: embedded NATS server did not start on %s (is the port taken? set events.embedded_listen, or events.nats_url for an external server)", e.EmbeddedListen)
		}
		l.embedded, l.url = ns, ns.ClientURL()
		log.Info("events: embedded NATS server listening", "url", l.url, "jetstream", e.EmbeddedJetStream)
	}
	opts := []nats.Option{
		nats.Name(fmt.Sprintf("reeve %s node %d", cfg.Cluster.Name, cfg.Node.ID)),
		nats.MaxReconnects(-1), nats.ReconnectWait(500 * time.Millisecond), nats.RetryOnFailedConnect(true),
		// Publishing while disconnected fails at once rather than filling
		// a buffer: the outbox in Raft is the buffer, and an event counts
		// as delivered only once the server has it.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own close at shutdown
				log.Warn("events: NATS disconnected; events wait in the outbox", "err", err.Error())
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("events: NATS reconnected", "url", c.ConnectedUrl()) }),
	}
	if e.CredentialsFile != "" {
		opts = append(opts, nats.UserCredentials(e.CredentialsFile))
	}
	if e.NKeySeedFile != "" {
		opt, err := nats.NkeyOptionFromSeed(e.NKeySeedFile)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("events: events.nkey_seed_file %s: %w", e.NKeySeedFile, err)
		}
		opts = append(opts, opt)
	}
	if e.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(e.TLSCAFile))
	}
	if e.TLSCertFile != "" {
		opts = append(opts, nats.ClientCert(e.TLSCertFile, e.TLSKeyFile))
	}
	nc, err := nats.Connect(l.url, opts...)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("events: connect to %s: %w", l.url, err)
	}
	l.conn = nc
	if e.EmbeddedJetStream && l.embedded != nil {
		js, err := jetstream.New(nc)
		if err == nil {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err = js.CreateOrUpdateStream(sctx, jetstream.StreamConfig{
				Name: eventsStream, Subjects: []string{e.SubjectPrefix + ".>"},
				Storage: jetstream.FileStorage, Duplicates: dedupWindow,
			})
			cancel()
		}
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("events: JetStream stream %s: %w", eventsStream, err)
		}
	}
	return l, nil
}

// Conn is the connection to publish on.
func (l *Link) Conn() *nats.Conn { return l.conn }

// Close drains the connection and stops the embedded server. A nil Link
// (events off) closes as a no-op.
func (l *Link) Close() {
	if l == nil {
		return
	}
	if l.conn != nil {
		l.conn.Drain()
		l.conn.Close()
	}
	if l.embedded != nil {
		l.embedded.Shutdown()
		l.embedded.WaitForShutdown()
	}
}
