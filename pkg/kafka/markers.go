package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A Kafka broker in controlled shutdown can answer a transaction's EndTxn
// and then skip its markers: its transaction coordinator finds no leader
// for the transaction's partitions in its metadata, takes them for
// deleted (TransactionMarkerChannelManager: "these partitions are likely
// deleted already and hence can be skipped") and completes the
// transaction without them. The records stay open on those partitions
// for good: read_committed readers stop at them, and the same producer's
// next marker there decides them with its own. This file holds the
// Kafka-level pieces that find and settle such transactions (the
// coordinator's view, the marker Kafka skipped), used by the processor
// (pkg/processor/hanging.go).

// DescribeTxn reads the coordinator's view of txnID: its producer id and
// epoch, the state of its last transaction and, while one runs, its
// partitions.
func DescribeTxn(ctx context.Context, adm *kadm.Client, txnID string) (kadm.DescribedTransaction, error) {
	described, err := adm.DescribeTransactions(ctx, txnID)
	if err == nil {
		err = described[txnID].Err
	}
	return described[txnID], err
}

// CoordinatorRuns tells whether the coordinator is still ending (or
// running) the transaction that wrote p's open records: it then writes
// their markers itself.
func CoordinatorRuns(coord kadm.DescribedTransaction, p kadm.DescribedProducer) bool {
	if coord.ProducerID != p.ProducerID {
		return false
	}
	// Under transactions v1 an earlier transaction has the running one's
	// epoch: where the coordinator lists the running one's partitions,
	// only those are its.
	if len(coord.Topics) > 0 && !coord.Topics.Lookup(p.Topic, p.Partition) {
		return false
	}
	switch coord.State {
	case "PrepareCommit", "PrepareAbort", "PrepareEpochFence":
		// Transactions v2 bumps the epoch when it prepares.
		return coord.ProducerEpoch == p.ProducerEpoch || coord.ProducerEpoch == p.ProducerEpoch+1
	case "Ongoing":
		return coord.ProducerEpoch == p.ProducerEpoch
	}
	return false
}

// CoordinatorDecided tells the fate the coordinator gave the transaction
// that wrote p's open records, when it is the last one it completed: the
// transaction's end, whose answer the writer may not have had.
// Transactions v2 completes at the next epoch.
func CoordinatorDecided(coord kadm.DescribedTransaction, p kadm.DescribedProducer) (commit, known bool) {
	if coord.ProducerID != p.ProducerID || (coord.ProducerEpoch != p.ProducerEpoch && coord.ProducerEpoch != p.ProducerEpoch+1) {
		return false, false
	}
	switch coord.State {
	case "CompleteCommit":
		return true, true
	case "CompleteAbort":
		return false, true
	}
	return false, false
}

// WriteMarker writes a commit or abort marker for p's open transaction on
// its partition, at the epoch its records carry and the coordinator epoch
// the partition knows (the checks a partition applies to a marker). It
// needs CLUSTER_ACTION on the cluster, as Kafka's own admin abort does.
func WriteMarker(ctx context.Context, cl *kgo.Client, p kadm.DescribedProducer, commit bool) error {
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = p.ProducerID, p.ProducerEpoch, commit, p.CoordinatorEpoch
	t := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	t.Topic, t.Partitions = p.Topic, []int32{p.Partition}
	m.Topics = append(m.Topics, t)
	req.Markers = append(req.Markers, m)
	resp, err := req.RequestWith(ctx, cl.Broker(int(p.Leader)))
	if err != nil {
		return err
	}
	for _, m := range resp.Markers {
		for _, t := range m.Topics {
			for _, pr := range t.Partitions {
				if err := kerr.ErrorForCode(pr.ErrorCode); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
