package ingest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// pacedBody is r's body for a read made before its signature is checked
// (a webhook's, a signed batch's), never read past -read-timeout from
// start. Such a body holds its share of -max-body-bytes-in-flight (up to
// four times what arrived) for anyone, secret or not, so it is cut with a
// timeout, answered 408 like -read-timeout's, when it
//
//   - sends no byte for -body-idle-timeout: 16 connections that sent a
//     quarter of a declared 1 MiB and stopped held a 16 MiB budget until
//     -read-timeout (30 s), every source's webhooks answered 503;
//   - falls behind -body-min-rate by a whole -body-idle-timeout: the same
//     16, going on at a byte every 200 ms (never idle for 1 s), still held
//     it 8 s later. Each byte buys 1/rate of a second and at most one idle
//     timeout is kept in hand, so a burst earns no lasting credit: a rate
//     averaged from the start, as Apache's mod_reqtimeout and Kestrel
//     measure it, let the first 256 KiB buy over four minutes at 1 KiB/s.
//
// The request's reservation goes back when its handler returns, just
// after the 408.
func (s *Server) pacedBody(w http.ResponseWriter, r *http.Request, start time.Time) io.ReadCloser {
	return &pacedReader{
		ReadCloser: r.Body,
		rc:         http.NewResponseController(w),
		idle:       s.cfg.BodyIdleTimeout,
		rate:       int64(s.cfg.BodyMinRate),
		until:      start.Add(s.cfg.ReadTimeout),
		// The first idle timeout is the grace period: the sender may
		// need it to get going (a new TCP window, 100 Continue).
		due:    start.Add(s.cfg.BodyIdleTimeout),
		inHand: true,
	}
}

// pacedReader sets the connection's read deadline before each read of
// the body; see pacedBody.
type pacedReader struct {
	io.ReadCloser
	rc    *http.ResponseController
	idle  time.Duration
	rate  int64 // bytes per second; 0: no minimum rate
	until time.Time
	// due is when the body falls behind rate by a whole idle timeout,
	// with rate set; inHand is whether a whole idle timeout was in hand
	// at the last byte (a cut then is a stall, not a slow body).
	due    time.Time
	inHand bool
}

// The bound a read's deadline came from, for the cut's error.
const (
	boundIdle = iota
	boundRate
	boundReadTimeout
)

func (b *pacedReader) Read(p []byte) (int, error) {
	now := time.Now()
	d, bound := now.Add(b.idle), boundIdle
	if b.rate > 0 {
		// Never after now+idle: due is at most the last byte's time plus
		// the idle timeout.
		d, bound = b.due, boundRate
		if b.inHand {
			bound = boundIdle
		}
	}
	if !d.Before(b.until) {
		d, bound = b.until, boundReadTimeout
	}
	_ = b.rc.SetReadDeadline(d)
	n, err := b.ReadCloser.Read(p)
	if n > 0 && b.rate > 0 {
		b.earn(n, time.Now())
	}
	switch {
	case err == io.EOF:
		// The body is in. net/http reads the connection in the
		// background from here, and a timeout there cancels the
		// request's context: the deadline goes back to the read
		// timeout's while the request waits for Kafka.
		_ = b.rc.SetReadDeadline(b.until)
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		err = b.cut(bound, err)
	}
	return n, err
}

// earn moves due on by what n bytes buy at rate, keeping at most one idle
// timeout in hand from now.
func (b *pacedReader) earn(n int, now time.Time) {
	due := b.due.Add(time.Duration(n) * time.Second / time.Duration(b.rate))
	limit := now.Add(b.idle)
	b.inHand = !due.Before(limit)
	if b.inHand {
		due = limit
	}
	b.due = due
}

// cut names the flag whose bound ended the read, for the log; a cut by
// -body-idle-timeout or -body-min-rate is answered as a slow body (see
// readFailure), one by -read-timeout as net/http's own cut.
func (b *pacedReader) cut(bound int, err error) error {
	switch bound {
	case boundIdle:
		return &slowBodyError{why: fmt.Sprintf("no byte of the body for -body-idle-timeout (%v)", b.idle), err: err}
	case boundRate:
		return &slowBodyError{why: fmt.Sprintf("body arrived slower than -body-min-rate (%d bytes/s) for longer than -body-idle-timeout (%v) allows", b.rate, b.idle), err: err}
	}
	return err // -read-timeout: as net/http's own cut says
}

// slowBodyError is a body read cut by -body-idle-timeout or
// -body-min-rate: 408 as a read timeout is, counted reason "slow_body". It
// unwraps to the read's timeout (a net.Error).
type slowBodyError struct {
	why string
	err error
}

func (e *slowBodyError) Error() string { return e.why + ": " + e.err.Error() }
func (e *slowBodyError) Unwrap() error { return e.err }
