package ingest

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/net/netutil"
)

// connLimit bounds the webhook listener's open connections (-max-conns)
// with netutil.LimitListener: at the bound it stops accepting, and new
// connections wait unserved in the kernel's listen backlog until one
// closes (past the backlog the client's TCP stack retries or fails). Every
// connection holds a goroutine, buffers and a descriptor whatever it sends
// (about 15–20 KiB idle, measured with go1.26): without a bound, many idle
// or slow clients grew them until the process ran out of descriptors or
// memory. Slow ones are still cut by the read-header and read timeouts and
// idle keep-alive ones by the idle timeout, which frees their slots. The
// admin listener is another server: its probes answer however full this
// one is.
type connLimit struct {
	net.Listener // netutil.LimitListener's
	max          int64
	m            *Metrics
	log          *slog.Logger
	// full logs the limit reached at warn once per period (it is reached
	// on every accept while saturated), at debug in between.
	full warnEvery
}

// connFullEvery is how often reaching the connection limit is logged at
// warn; inlet.ingest.connections.limit_reached counts every time.
const connFullEvery = 30 * time.Second

func newConnLimit(ln net.Listener, n int, m *Metrics, log *slog.Logger) *connLimit {
	m.maxConns.Store(int64(n))
	return &connLimit{Listener: netutil.LimitListener(ln, n), max: int64(n), m: m, log: log, full: warnEvery{period: connFullEvery}}
}

// Accept waits for a free slot, then for a connection.
func (l *connLimit) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if l.m.conns.Add(1) >= l.max {
		l.reached()
	}
	return &countedConn{Conn: c, m: l.m}, nil
}

// reached counts and logs an accept that filled the limit.
func (l *connLimit) reached() {
	l.m.connsFull.Add(context.Background(), 1)
	lvl, quiet := l.full.level(time.Now())
	l.log.Log(context.Background(), lvl, "webhook connections at -max-conns (INLET_MAX_CONNS): new connections wait unserved until one closes; many slow or idle clients, or too few replicas for the load",
		"max_conns", l.max, "at_debug_since_last", quiet)
}

// countedConn gives its slot's count back once, when closed.
type countedConn struct {
	net.Conn
	m    *Metrics
	once sync.Once
}

// Close counts the connection closed before its slot is released (the
// inner Close), so the gauge never reads above the limit.
func (c *countedConn) Close() error {
	c.once.Do(func() { c.m.conns.Add(-1) })
	return c.Conn.Close()
}
