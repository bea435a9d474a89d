"""A continuous acks=all idempotent producer (librdkafka through confluent_kafka) for the cluster
fault tests. Writes to every partition of $TOPIC in turn, $RATE records per second in all; each
record's value is "<partition>:<seq>", seq counting up from 0 per partition, so a checker can see
loss, duplication and reordering within a partition.

One JSON line on stdout per delivery report:
  {"p": 0, "o": 41, "v": "0:41", "t": 1764402000123}            acknowledged (t: epoch ms)
  {"p": 0, "v": "0:42", "err": "...", "t": ...}                  failed (may or may not be stored)
Other lines: {"event": "started"}, {"event": "error", ...} (client-level errors, e.g. a broker
down), and at the end {"event": "done", "produced": N, "acked": N, "failed": N}.
Stops on SIGTERM or SIGINT, or after $DURATION_S seconds if set: stops producing, flushes what is
in flight (up to $FLUSH_S seconds), prints the summary, exits 0 (2 if the flush left records
undelivered).

librdkafka before 2.2.1 has a bug (confluentinc/librdkafka#4438, fixed in 2.2.1 and 2.3.0): when
a request to a partition's old leader times out while the partition has already moved, it may
count the timed-out batch as written and send the next one to the new leader first; the new
leader rightly answers OUT_OF_ORDER_SEQUENCE_NUMBER (as Kafka does), and the client raises a
fatal "sequence desynchronization" error. On such a client, and for that error only, this script
does what an application must after a fatal error: it prints {"event": "client-fatal", ...},
leaves the dead producer (its records in flight get no report: neither acknowledged nor failed)
and goes on with a new one (a new producer id), at most twice. Any other fatal error ends it.
"""
import json
import os
import signal
import sys
import time

from confluent_kafka import KafkaError, KafkaException, Producer, libversion

bootstrap = os.environ["BOOTSTRAP"]
topic = os.environ["TOPIC"]
partitions = int(os.environ.get("PARTITIONS", "3"))
rate = float(os.environ.get("RATE", "200"))
duration = float(os.environ.get("DURATION_S", "0"))
flush_s = float(os.environ.get("FLUSH_S", "60"))

stopping = False


def stop(signum, frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)


def out(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def now_ms():
    return int(time.time() * 1000)


counts = {"produced": 0, "acked": 0, "failed": 0}


def on_delivery(err, msg):
    v = msg.value().decode()
    if err is not None:
        counts["failed"] += 1
        out({"p": msg.partition(), "v": v, "err": str(err), "t": now_ms()})
    else:
        counts["acked"] += 1
        out({"p": msg.partition(), "o": msg.offset(), "v": v, "t": now_ms()})


def on_error(err):
    out({"event": "error", "err": str(err), "t": now_ms()})


CONFIG = {
    "bootstrap.servers": bootstrap,
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 5,
    # Long enough that no record times out while a partition fails over: a timed-out record
    # would be a failure the test has to excuse.
    "message.timeout.ms": 120000,
    "request.timeout.ms": 5000,
    # A request in flight to a node cut off by a network partition gets no answer and no reset:
    # give up on it after this long (librdkafka's default is 60 s) and retry on the new leader.
    "socket.timeout.ms": 6000,
    "retry.backoff.ms": 50,
    "reconnect.backoff.ms": 50,
    "reconnect.backoff.max.ms": 500,
    "topic.metadata.refresh.interval.ms": 1000,
    "error_cb": on_error,
}


def known_client_bug(err):
    """The fatal error of librdkafka#4438 on a librdkafka that has the bug (see the docstring)."""
    version = tuple(int(x) for x in libversion()[0].split("-")[0].split(".")[:3])
    return (
        version < (2, 2, 1)
        and err.fatal()
        and err.code() == KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER
        and "sequence desynchronization" in err.str()
        # The bug's trigger: a timed-out batch counted as possibly persisted. A stale leader
        # answering out of order (a broker bug this test exists to catch) has no such timeout.
        and "_TIMED_OUT (actions Retry,MsgPossiblyPersisted" in err.str()
    )


producer = Producer(CONFIG)
abandoned = []  # producers left after a known client bug, kept so their destruction cannot block

seq = [0] * partitions
out({"event": "started", "t": now_ms()})
started = time.monotonic()
interval = 1.0 / rate
next_at = started
p = 0
while not stopping:
    if duration > 0 and time.monotonic() - started >= duration:
        break
    try:
        t = time.monotonic()
        if t < next_at:
            producer.poll(min(next_at - t, 0.05))
            continue
        next_at += interval
        value = "%d:%d" % (p, seq[p])
        try:
            producer.produce(topic, value=value.encode(), partition=p, on_delivery=on_delivery)
        except BufferError:
            producer.poll(0.1)
            continue
        seq[p] += 1
        counts["produced"] += 1
        p = (p + 1) % partitions
        producer.poll(0)
    except KafkaException as e:
        err = e.args[0]
        if not known_client_bug(err) or len(abandoned) >= 2:
            raise
        out({"event": "client-fatal", "known": "librdkafka %s: confluentinc/librdkafka#4438" % libversion()[0], "err": str(err), "t": now_ms()})
        abandoned.append(producer)
        producer = Producer(CONFIG)

left = producer.flush(flush_s)
out(dict(event="done", undelivered=left, t=now_ms(), **counts))
sys.exit(0 if left == 0 else 2)
