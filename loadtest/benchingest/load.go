package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/inletdev/inlet/pkg/webhook"
)

// requests is a pool of complete HTTP/1.1 requests (head and body), each
// with its own Stripe event id, signed before the timed window starts so the
// generator only writes bytes and reads status lines while it is measured.
// The bytes live in an anonymous mapping outside the Go heap: a pool of
// tens of megabytes on the heap would space out garbage collections and
// flatter every server in the process.
type requests struct {
	raw   [][]byte
	arena []byte // mmapped; nil when the bytes are on the heap
	next  atomic.Uint64
}

// take returns the next request of the pool, cycling.
func (p *requests) take() []byte {
	return p.raw[(p.next.Add(1)-1)%uint64(len(p.raw))]
}

// free releases the arena; the pool must not be used afterwards.
func (p *requests) free() {
	if p.arena != nil {
		_ = syscall.Munmap(p.arena[:cap(p.arena)])
		p.arena, p.raw = nil, nil
	}
}

// maxHead bounds the request line and headers the generator writes.
const maxHead = 512

// buildRequests signs n bodies of exactly size bytes for host with signer
// at now. Each body is a Stripe-shaped event with a distinct id, taken from
// *ids onwards (the caller keeps one counter for the run, so no two pools
// share ids).
func buildRequests(host string, size, n int, ids *uint64, signer webhook.Signer, now time.Time) (*requests, error) {
	p := &requests{raw: make([][]byte, n)}
	arena, err := syscall.Mmap(-1, 0, n*(size+maxHead), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err == nil {
		p.arena = arena[:0]
	}
	h := http.Header{}
	var b bytes.Buffer
	for i := range p.raw {
		*ids++
		id := *ids
		body, err := stripeBody(id, now, size)
		if err != nil {
			p.free()
			return nil, err
		}
		if err := signer.Sign(h, body, now); err != nil {
			p.free()
			return nil, err
		}
		b.Reset()
		b.WriteString("POST /webhooks/stripe HTTP/1.1\r\nHost: ")
		b.WriteString(host)
		b.WriteString("\r\nUser-Agent: inlet-benchingest\r\nContent-Type: application/json\r\nStripe-Signature: ")
		b.WriteString(h.Get(webhook.StripeHeader))
		b.WriteString("\r\nContent-Length: ")
		b.WriteString(strconv.Itoa(len(body)))
		b.WriteString("\r\n\r\n")
		if b.Len() > maxHead {
			p.free()
			return nil, fmt.Errorf("request head of %d bytes over %d", b.Len(), maxHead)
		}
		b.Write(body)
		if p.arena == nil {
			p.raw[i] = bytes.Clone(b.Bytes())
			continue
		}
		start := len(p.arena)
		p.arena = append(p.arena, b.Bytes()...) // within capacity: never reallocates
		p.raw[i] = p.arena[start:len(p.arena):len(p.arena)]
	}
	if p.arena != nil {
		p.arena = p.arena[:cap(p.arena)]
	}
	return p, nil
}

// minBodySize is the size of a Stripe body with an empty filler (ids are
// fixed-width; created has 10 digits until 2286).
var minBodySize = len(fmt.Appendf(nil, bodyFormat, uint64(0), int64(1e9), uint64(0), ""))

const bodyFormat = `{"id":"evt_%024d","object":"event","api_version":"2024-06-20","created":%d,` +
	`"type":"invoice.paid","livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},` +
	`"data":{"object":{"id":"in_%024d","object":"invoice","currency":"eur","amount_due":4200,"description":"%s"}}}`

// stripeBody is a valid JSON Stripe event of exactly size bytes.
func stripeBody(id uint64, now time.Time, size int) ([]byte, error) {
	bare := fmt.Appendf(nil, bodyFormat, id, now.Unix(), id, "")
	if len(bare) > size {
		return nil, fmt.Errorf("-size must be at least %d bytes (a Stripe event with an empty description)", len(bare))
	}
	return fmt.Appendf(make([]byte, 0, size), bodyFormat, id, now.Unix(), id, filler(id, size-len(bare))), nil
}

// words fill the description: text that compresses about as well as real
// event payloads do (a run of one letter would flatter compression).
var words = strings.Fields(`invoice customer subscription payment intent card charge refund
	line item amount currency period start end tax discount coupon plan price product quantity
	metadata billing reason status paid open draft void uncollectible attempt next webhook
	account email name address city country postal code phone description statement`)

// filler is n bytes of words picked by a small PRNG seeded with id.
func filler(id uint64, n int) []byte {
	b := make([]byte, 0, n+16)
	x := id*0x9E3779B97F4A7C15 | 1
	for len(b) < n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = append(b, words[x%uint64(len(words))]...)
		if x>>60 == 0 {
			b = strconv.AppendUint(append(b, ' '), x>>40, 10)
		}
	}
	return b[:n]
}

// Phases of a cell. Workers record only requests that started and ended in
// phaseMeasure.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// tally is one worker's (or, merged, one cell's) counts.
type tally struct {
	hist     *hdrhistogram.Histogram // µs, measured window only
	measured int64                   // 2xx answers in the window
	errs     int64                   // non-2xx and I/O errors in the window
	all2xx   int64                   // 2xx answers in warm-up and window
	statuses map[int]int64           // non-2xx statuses, any phase
	ioErrs   int64                   // any phase
	firstErr error
}

func newTally() *tally {
	return &tally{hist: hdrhistogram.New(1, 30_000_000, 3), statuses: map[int]int64{}}
}

func (t *tally) merge(o *tally) {
	t.hist.Merge(o.hist)
	t.measured += o.measured
	t.errs += o.errs
	t.all2xx += o.all2xx
	t.ioErrs += o.ioErrs
	for k, v := range o.statuses {
		t.statuses[k] += v
	}
	if t.firstErr == nil {
		t.firstErr = o.firstErr
	}
}

// cell is the outcome of one (mode, connections) run.
type cell struct {
	mode   string
	conns  int
	window time.Duration
	cpu    cpuUse // during the window
	*tally
}

func (c cell) rate() float64 { return float64(c.measured) / c.window.Seconds() }

// cpuPerReq is the process CPU (all goroutines: server, kfake, generator)
// per 2xx answer in the window. It is less sensitive than req/s to other
// processes competing for the CPUs, though not immune (shared caches).
func (c cell) cpuPerReq() time.Duration {
	if c.measured == 0 {
		return 0
	}
	return c.cpu.self / time.Duration(c.measured)
}

// othersShare is the share of the machine's CPUs other processes used
// during the window: when it is not near 0, req/s is not trustworthy.
func (c cell) othersShare() float64 {
	return c.cpu.others.Seconds() / (c.window.Seconds() * float64(runtime.NumCPU()))
}

// runCell drives addr with conns closed-loop keep-alive connections: warm-up,
// then the measured window, then it waits for the requests in flight.
// measured, when set, is called as the window opens and returns the
// function to call as it closes (the CPU profile hook).
func runCell(ctx context.Context, addr string, pool *requests, conns int, warmup, window time.Duration, measured func() func()) (*tally, time.Duration, cpuUse) {
	var phase atomic.Int32
	tallies := make([]*tally, conns)
	var wg sync.WaitGroup
	for i := range tallies {
		t := newTally()
		tallies[i] = t
		wg.Go(func() {
			c := &client{addr: addr}
			defer c.close()
			for {
				p := phase.Load()
				if p == phaseStop {
					return
				}
				start := time.Now()
				status, err := c.do(pool.take())
				elapsed := time.Since(start)
				inWindow := p == phaseMeasure && phase.Load() == phaseMeasure
				switch {
				case err != nil:
					t.ioErrs++
					if t.firstErr == nil {
						t.firstErr = err
					}
				case status < 200 || status > 299:
					t.statuses[status]++
				default:
					t.all2xx++
				}
				if !inWindow {
					continue
				}
				if err != nil || status < 200 || status > 299 {
					t.errs++
					continue
				}
				t.measured++
				_ = t.hist.RecordValue(elapsed.Microseconds())
			}
		})
	}
	sleep(ctx, warmup)
	done := func() {}
	if measured != nil {
		done = measured()
	}
	cpu0, busy0 := processCPU(), machineBusy()
	begin := time.Now()
	phase.Store(phaseMeasure)
	sleep(ctx, window)
	phase.Store(phaseStop)
	elapsed := time.Since(begin)
	cpu := cpuUse{self: processCPU() - cpu0}
	if busy1 := machineBusy(); busy0 > 0 && busy1 > 0 {
		cpu.others = max(busy1-busy0-cpu.self, 0)
	}
	done()
	wg.Wait()
	total := newTally()
	for _, t := range tallies {
		total.merge(t)
	}
	return total, elapsed, cpu
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// cpuUse is the CPU time used during a measured window.
type cpuUse struct {
	self   time.Duration // this process: servers, kfake, generator
	others time.Duration // every other process on the machine
}

// machineBusy is the non-idle CPU time of the whole machine from
// /proc/stat (0 when unavailable).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:8] { // user nice system idle iowait irq softirq
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0
		}
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / clockTicks
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// processCPU is the user+system CPU time this process has used: servers,
// kfake and generator together.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// client is one HTTP/1.1 keep-alive connection. It writes prepared requests
// and parses only what it needs of the answer (status, Content-Length,
// Connection), which keeps the generator's share of the 2 CPUs small.
type client struct {
	addr string
	conn net.Conn
	br   *bufio.Reader
}

func (c *client) close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}

func (c *client) do(req []byte) (int, error) {
	if c.conn == nil {
		conn, err := net.Dial("tcp", c.addr)
		if err != nil {
			return 0, err
		}
		c.conn = conn
		if c.br == nil {
			c.br = bufio.NewReaderSize(conn, 4096)
		} else {
			c.br.Reset(conn)
		}
	}
	if _, err := c.conn.Write(req); err != nil {
		c.close()
		return 0, err
	}
	status, keep, err := readResponse(c.br)
	if err != nil || !keep {
		c.close()
	}
	return status, err
}

var errResponse = errors.New("malformed HTTP response")

// readResponse reads one response and discards its body. keep is false when
// the server will close the connection.
func readResponse(br *bufio.Reader) (status int, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, false, fmt.Errorf("%w: status line %q", errResponse, line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("%w: status line %q", errResponse, line)
	}
	length, keep := -1, true
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, false, fmt.Errorf("%w: header line %q", errResponse, line)
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil {
				return 0, false, fmt.Errorf("%w: Content-Length %q", errResponse, v)
			}
		case bytes.EqualFold(k, []byte("Connection")) && bytes.EqualFold(v, []byte("close")):
			keep = false
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			return 0, false, fmt.Errorf("%w: Transfer-Encoding %q not supported by the generator", errResponse, v)
		}
	}
	if length < 0 {
		return 0, false, fmt.Errorf("%w: no Content-Length", errResponse)
	}
	if _, err := br.Discard(length); err != nil {
		return 0, false, err
	}
	return status, keep, nil
}
