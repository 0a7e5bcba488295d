// Package gen is Inlet's load generator: scenarios of signed webhook
// deliveries (steady, ramp, burst, duplicate storm, out-of-order updates,
// provider mix, large bodies), an open-model scheduler, the outcome checker
// that reads Kafka and the processor's metrics after a run, and the HTML
// report.
//
// The scheduler is an open model: request i is started at its intended time
// (from the scenario's arrival-rate profile) whether or not earlier requests
// have answered, and its latency is measured from that intended time, so a
// slow target shows up as latency and not as a lower request rate
// (coordinated omission). Latencies go into HDR histograms.
//
// Every run is bounded by its duration and by a request count; targets are
// loopback only unless Config.AllowRemote is set.
package gen
