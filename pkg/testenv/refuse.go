package testenv

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// RefusedProduce is the answer of a broker that refuses every partition of
// req with err (NOT_ENOUGH_REPLICAS, say), for a kfake ControlKey on
// kmsg.Produce.
func RefusedProduce(req *kmsg.ProduceRequest, err *kerr.Error) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, err.Code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// ProduceOutage is a short Kafka outage for some produces, on an embedded
// Env's kfake cluster: the "Kafka is back" tests measure how soon their
// component recovers from UpAt.
type ProduceOutage struct {
	down   atomic.Bool
	failed atomic.Int32
	upAt   atomic.Int64
}

// FailProduces makes e's kfake cluster fail, while the returned outage is
// down (it starts up), the produces match accepts (every one when match is
// nil): refused on every partition with NOT_ENOUGH_REPLICAS, as a broker
// short of in-sync replicas answers, or with drop their connections
// dropped. With limit > 0 the outage is up again at its limit-th failed
// produce, which still fails: the client then recovers through its own
// retries, not through a test calling Up when it happens to look.
func (e *Env) FailProduces(t testing.TB, drop bool, match func(*kmsg.ProduceRequest) bool, limit int) *ProduceOutage {
	t.Helper()
	c := e.Stack.Kafka
	if c == nil {
		t.Fatal("FailProduces needs the embedded kfake cluster")
	}
	o := new(ProduceOutage)
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.ProduceRequest)
		if !o.down.Load() || match != nil && !match(req) {
			return nil, nil, false
		}
		if o.failed.Add(1) == int32(limit) {
			o.Up()
		}
		if drop {
			return nil, errors.New("injected: connection dropped"), true
		}
		return RefusedProduce(req, kerr.NotEnoughReplicas), nil, true
	})
	return o
}

// Down starts failing produces.
func (o *ProduceOutage) Down() { o.down.Store(true) }

// Up stops failing produces and notes when.
func (o *ProduceOutage) Up() {
	o.down.Store(false)
	o.upAt.Store(time.Now().UnixNano())
}

// Failed is how many produces the outage failed.
func (o *ProduceOutage) Failed() int { return int(o.failed.Load()) }

// UpAt is when the outage was last up again, zero before.
func (o *ProduceOutage) UpAt() time.Time {
	n := o.upAt.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
