package servicetest

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// HungKafka is a one-broker kfake cluster whose connections can be
// frozen: frozen, the broker holds every request and answers nothing, as
// one SIGSTOPped or cut off by a network partition does (connections stay
// open; nothing is refused, so a client waits out its own timeouts).
type HungKafka struct {
	*kfake.Cluster
	addr   string
	mu     sync.Mutex
	thawed chan struct{} // closed while not frozen
	held   atomic.Int64  // reads that came in while frozen
}

// NewHungKafka starts the cluster, not frozen; it is thawed and closed
// when t ends.
func NewHungKafka(t *testing.T, opts ...kfake.Opt) *HungKafka {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k := &HungKafka{addr: ln.Addr().String(), thawed: make(chan struct{})}
	close(k.thawed)
	c, err := kfake.NewCluster(append(opts, kfake.NumBrokers(1), kfake.ListenFn(func(string, string) (net.Listener, error) {
		return freezeListener{Listener: ln, k: k}, nil
	}))...)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	k.Cluster = c
	t.Cleanup(c.Close)
	t.Cleanup(k.Thaw) // runs first: the cluster's close needs its connections
	return k
}

// Addr is the broker address (host:port).
func (k *HungKafka) Addr() string { return k.addr }

// Freeze makes the broker answer nothing until Thaw.
func (k *HungKafka) Freeze() {
	k.mu.Lock()
	defer k.mu.Unlock()
	select {
	case <-k.thawed:
		k.thawed = make(chan struct{})
	default:
	}
}

// Thaw lets what Freeze held go on.
func (k *HungKafka) Thaw() {
	k.mu.Lock()
	defer k.mu.Unlock()
	select {
	case <-k.thawed:
	default:
		close(k.thawed)
	}
}

// Held is how many reads of what clients sent came in while frozen: it
// grows as requests reach the frozen broker.
func (k *HungKafka) Held() int64 { return k.held.Load() }

func (k *HungKafka) wait(read bool) {
	k.mu.Lock()
	ch := k.thawed
	k.mu.Unlock()
	select {
	case <-ch:
		return
	default:
	}
	if read {
		k.held.Add(1)
	}
	<-ch
}

type freezeListener struct {
	net.Listener
	k *HungKafka
}

func (l freezeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return freezeConn{Conn: c, k: l.k}, nil
}

// freezeConn holds what it reads and what it would write while frozen.
type freezeConn struct {
	net.Conn
	k *HungKafka
}

func (c freezeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.k.wait(n > 0)
	return n, err
}

func (c freezeConn) Write(p []byte) (int, error) {
	c.k.wait(false)
	return c.Conn.Write(p)
}
