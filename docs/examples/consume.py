#!/usr/bin/env python3
"""Read an Inlet topic with nothing but Confluent's Python client.

This is what a data team runs to look at Inlet's records: confluent-kafka
(librdkafka) for Kafka, and its schema-registry AvroDeserializer, which reads
the Confluent wire format (magic byte 0, 4-byte big-endian schema id, Avro
body) and fetches the writer schema by id from the registry. No Inlet code is
involved on the reading side.

One JSON object per record goes to stdout:

    {"topic": "inlet.raw", "partition": 0, "offset": 12,
     "timestamp": "2024-05-01T10:00:00.123000+00:00",
     "key": "stripe:evt_1", "schema_id": 1,
     "headers": {"correlation-id": "req-42", ...},
     "value": {"id": "...", "source": "stripe", ..., "payload": "{\"id\":\"evt_1\",...}"}}

Bytes (the envelope's `payload`, header values, the key) are printed as text
when they are valid UTF-8, else as {"base64": "..."}; Avro timestamps as
RFC 3339 strings. Diagnostics go to stderr, so stdout stays one JSON line per
record.

Reads are read_committed: records of aborted Kafka transactions are never
shown. Offsets are committed for the group only after a record was printed.

    pip install -r docs/examples/requirements.txt
    python3 docs/examples/consume.py --bootstrap 127.0.0.1:9092 \\
        --registry http://127.0.0.1:8081 --topic inlet.raw --from-beginning --max 10

Extra librdkafka settings (SASL, TLS, ...) go through -X, as with kcat:
    -X security.protocol=SASL_SSL -X sasl.mechanism=SCRAM-SHA-512 \\
    -X sasl.username=me -X sasl.password=...
Registry basic auth: INLET_SCHEMA_REGISTRY_USER / INLET_SCHEMA_REGISTRY_PASSWORD.
"""

import argparse
import base64
import datetime
import json
import os
import signal
import sys
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Print the records of an Inlet topic as JSON lines (confluent-kafka + schema registry Avro).")
    p.add_argument("--bootstrap", default=os.environ.get("INLET_KAFKA_BROKERS", "127.0.0.1:9092"),
                   help="Kafka bootstrap servers (default: $INLET_KAFKA_BROKERS or 127.0.0.1:9092)")
    p.add_argument("--registry", default=os.environ.get("INLET_SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081"),
                   help="schema registry URL (default: $INLET_SCHEMA_REGISTRY_URL or http://127.0.0.1:8081)")
    p.add_argument("--topic", default="inlet.raw", help="topic to read (default: inlet.raw)")
    p.add_argument("--group", default=None,
                   help="consumer group id (default: a new inlet-example-<random> group each run)")
    p.add_argument("--max", type=int, default=0, metavar="N", help="stop after N records (default: no limit)")
    p.add_argument("--timeout", type=float, default=0, metavar="SECONDS",
                   help="stop after SECONDS without a new record (default: run until interrupted)")
    p.add_argument("--from-beginning", action="store_true",
                   help="start at the earliest offset of every partition, even if the group has committed offsets "
                        "(default: committed offset, else the end)")
    p.add_argument("-X", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                   help="extra librdkafka property, repeatable (security.protocol, sasl.*, ssl.*, ...)")
    return p.parse_args(argv)


def text_or_base64(b):
    """bytes -> str when valid UTF-8, else {"base64": ...}; None stays None."""
    if b is None:
        return None
    if isinstance(b, str):
        return b
    try:
        return bytes(b).decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(bytes(b)).decode("ascii")}


def jsonable(v):
    """Avro-decoded values (bytes, datetimes, decimals, UUIDs, nested) -> JSON-ready values."""
    if isinstance(v, (bytes, bytearray, memoryview)):
        return text_or_base64(v)
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)  # Decimal, UUID, ...


def headers_dict(headers):
    """Kafka headers -> {name: value}; a name that repeats maps to a list."""
    out = {}
    for k, v in headers or []:
        v = text_or_base64(v)
        if k in out:
            if not isinstance(out[k], list):
                out[k] = [out[k]]
            out[k].append(v)
        else:
            out[k] = v
    return out


def schema_id(raw):
    """The schema id of a Confluent-framed value, None when it is not framed."""
    if raw is None or len(raw) < 5 or raw[0] != 0:
        return None
    return int.from_bytes(raw[1:5], "big")


def record_time(msg):
    kind, ms = msg.timestamp()
    if ms is None or ms < 0 or kind == 0:  # TIMESTAMP_NOT_AVAILABLE
        return None
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc).isoformat()


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group or "inlet-example-" + uuid.uuid4().hex[:8],
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest" if args.from_beginning else "latest",
        # Commit only what was printed: offsets are stored after each line.
        "enable.auto.commit": True,
        "enable.auto.offset.store": False,
        "client.id": "inlet-consume-example",
    }
    for kv in args.extra:
        k, sep, v = kv.partition("=")
        if not sep:
            sys.exit("-X wants KEY=VALUE, got %r" % kv)
        conf[k] = v

    sr_conf = {"url": args.registry}
    user = os.environ.get("INLET_SCHEMA_REGISTRY_USER")
    if user:
        sr_conf["basic.auth.user.info"] = user + ":" + os.environ.get("INLET_SCHEMA_REGISTRY_PASSWORD", "")
    registry = SchemaRegistryClient(sr_conf)
    # No reader schema: every record is decoded with the writer schema its id
    # names, so old and new envelope versions both print in full.
    deserialize = AvroDeserializer(registry)

    consumer = Consumer(conf)

    def on_assign(c, partitions):
        if args.from_beginning:
            for tp in partitions:
                tp.offset = OFFSET_BEGINNING
            c.assign(partitions)

    consumer.subscribe([args.topic], on_assign=on_assign)

    stop = {"now": False}

    def on_signal(signum, _frame):
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    printed = failed = 0
    last = time.monotonic()
    try:
        while not stop["now"]:
            if args.max and printed >= args.max:
                break
            if args.timeout and time.monotonic() - last >= args.timeout:
                break
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                err = msg.error()
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                if err.fatal():
                    raise KafkaException(err)
                print("kafka error: %s" % err, file=sys.stderr)
                continue
            last = time.monotonic()
            raw = msg.value()
            out = {
                "topic": msg.topic(),
                "partition": msg.partition(),
                "offset": msg.offset(),
                "timestamp": record_time(msg),
                "key": text_or_base64(msg.key()),
                "schema_id": schema_id(raw),
                "headers": headers_dict(msg.headers()),
            }
            try:
                value = deserialize(raw, SerializationContext(msg.topic(), MessageField.VALUE, msg.headers()))
            except Exception as e:  # undecodable: report it, keep the raw bytes, go on
                failed += 1
                print("%s[%d]@%d: cannot decode value: %s" % (msg.topic(), msg.partition(), msg.offset(), e),
                      file=sys.stderr)
                out["value"] = None
                out["raw_value"] = text_or_base64(raw)
                out["error"] = str(e)
            else:
                out["value"] = jsonable(value)
            sys.stdout.write(json.dumps(out, ensure_ascii=False, sort_keys=False) + "\n")
            sys.stdout.flush()
            consumer.store_offsets(message=msg)
            printed += 1
    finally:
        consumer.close()  # commits the stored offsets, leaves the group
    print("read %d records (%d undecodable) from %s" % (printed, failed, args.topic), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
