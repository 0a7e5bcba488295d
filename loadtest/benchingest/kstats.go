package main

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceStats counts what a producer client sent, through franz-go hooks:
// how well concurrent requests shared produce requests and batches, and
// what compression bought. It observes only; it changes no behaviour.
type produceStats struct {
	requests     atomic.Int64 // produce requests written
	batches      atomic.Int64 // partition batches acknowledged
	records      atomic.Int64
	uncompressed atomic.Int64
	compressed   atomic.Int64
}

var (
	_ kgo.HookBrokerWrite         = (*produceStats)(nil)
	_ kgo.HookProduceBatchWritten = (*produceStats)(nil)
)

func (s *produceStats) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 0 && err == nil { // 0: Produce
		s.requests.Add(1)
	}
}

func (s *produceStats) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	s.batches.Add(1)
	s.records.Add(int64(m.NumRecords))
	s.uncompressed.Add(int64(m.UncompressedBytes))
	s.compressed.Add(int64(m.CompressedBytes))
}

// snapshot is the counters at one instant; sub gives the counts between two.
type snapshot struct{ requests, batches, records, uncompressed, compressed int64 }

func (s *produceStats) snapshot() snapshot {
	if s == nil {
		return snapshot{}
	}
	return snapshot{s.requests.Load(), s.batches.Load(), s.records.Load(), s.uncompressed.Load(), s.compressed.Load()}
}

func (a snapshot) sub(b snapshot) snapshot {
	return snapshot{a.requests - b.requests, a.batches - b.batches, a.records - b.records, a.uncompressed - b.uncompressed, a.compressed - b.compressed}
}

func (a snapshot) String() string {
	if a.requests == 0 || a.batches == 0 || a.compressed == 0 {
		return ""
	}
	return fmt.Sprintf("%.1f rec/produce req, %.1f rec/batch, %.2fx compression",
		float64(a.records)/float64(a.requests), float64(a.records)/float64(a.batches),
		float64(a.uncompressed)/float64(a.compressed))
}
