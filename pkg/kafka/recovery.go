package kafka

import "time"

// MetadataMinAge is the least time between two metadata requests of the
// clients that write (ingest's producers, the processor's workers, ops'
// decisions and reads): kgo.MetadataMinAge(kafka.MetadataMinAge).
//
// A produce that Kafka refuses with a retriable error (NOT_ENOUGH_REPLICAS,
// NOT_LEADER_OR_FOLLOWER, ...) or whose request dies on a fresh connection
// is not retried after RetryBackoffFn: franz-go v1.22.3 holds its partition
// until the next metadata refresh (kgo/sink.go:1465 sets recBuf.failing,
// which only a refresh clears, sink.go:1956; :1481 asks for one), and a
// refresh comes no sooner than MetadataMinAge after the previous one
// (kgo/metadata.go:248; default 5 s); a failed metadata request is tried
// again no sooner either. With the default, every broker blip was followed
// by up to 5 s of nothing written (measured: ingest 503s for 4.7 s after a
// 0.3 s outage, a worker idle 4.0–4.7 s, a requeue 5 s per refused
// produce); with 250 ms, about 0.25 s. The cost is at most four metadata
// requests a second per client while Kafka refuses; transactions, fencing
// and acks are untouched.
const MetadataMinAge = 250 * time.Millisecond
