"""A consumer for the cluster fault tests (librdkafka through confluent_kafka).

MODE=group (default): a member of consumer group $GROUP subscribed to $TOPIC (auto commit),
printing one JSON line per record read: {"p": 0, "o": 41, "v": "0:41", "m": "$MEMBER"}, plus
{"event": "assigned"|"revoked", "partitions": [...]} on rebalances and {"event": "error", ...}.
Runs until SIGTERM or SIGINT, then commits, closes (leaving the group) and prints
{"event": "done", "read": N}.

MODE=dump: no group; reads every partition of $TOPIC from the beginning up to its high
watermark (as the brokers report it when the dump starts), printing one line per record, then
{"event": "done", "read": N, "end": {"0": 1234, ...}}. Exits 2 if it cannot get there within
$TIMEOUT_S seconds.
"""
import json
import os
import signal
import sys
import time

from confluent_kafka import Consumer, TopicPartition, KafkaError

bootstrap = os.environ["BOOTSTRAP"]
topic = os.environ["TOPIC"]
mode = os.environ.get("MODE", "group")
member = os.environ.get("MEMBER", "")
timeout_s = float(os.environ.get("TIMEOUT_S", "60"))


def out(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def on_error(err):
    out({"event": "error", "err": str(err)})


common = {
    "bootstrap.servers": bootstrap,
    "enable.partition.eof": False,
    "reconnect.backoff.ms": 50,
    "reconnect.backoff.max.ms": 500,
    "topic.metadata.refresh.interval.ms": 1000,
    # Requests to a node cut off by a network partition: give up after 6 s, not librdkafka's 60 s.
    "socket.timeout.ms": 6000,
    "error_cb": on_error,
}

if mode == "dump":
    c = Consumer(dict(common, **{"group.id": "strand-dump-%d" % os.getpid(), "enable.auto.commit": False, "auto.offset.reset": "earliest"}))
    md = c.list_topics(topic, timeout=timeout_s)
    parts = sorted(md.topics[topic].partitions.keys())
    end = {}
    for p in parts:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
        end[p] = hi
    c.assign([TopicPartition(topic, p, 0) for p in parts if end[p] > 0])
    pos = {p: 0 for p in parts}
    read = 0
    deadline = time.monotonic() + timeout_s
    while any(pos[p] < end[p] for p in parts):
        if time.monotonic() > deadline:
            out({"event": "done", "read": read, "end": end, "pos": pos, "incomplete": True})
            sys.exit(2)
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error() is not None:
            out({"event": "error", "err": str(m.error())})
            continue
        if m.offset() >= end[m.partition()]:
            continue
        read += 1
        pos[m.partition()] = m.offset() + 1
        out({"p": m.partition(), "o": m.offset(), "v": m.value().decode()})
    c.close()
    out({"event": "done", "read": read, "end": end})
    sys.exit(0)

stopping = False


def stop(signum, frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)

c = Consumer(dict(common, **{
    "group.id": os.environ["GROUP"],
    "client.id": "strand-e2e-%s" % member,
    "auto.offset.reset": "earliest",
    "enable.auto.commit": True,
    "auto.commit.interval.ms": 500,
    "session.timeout.ms": 10000,
    "heartbeat.interval.ms": 1000,
}))


def on_assign(consumer, partitions):
    out({"event": "assigned", "m": member, "partitions": [p.partition for p in partitions]})


def on_revoke(consumer, partitions):
    out({"event": "revoked", "m": member, "partitions": [p.partition for p in partitions]})


c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
read = 0
while not stopping:
    m = c.poll(0.2)
    if m is None:
        continue
    if m.error() is not None:
        if m.error().code() != KafkaError._PARTITION_EOF:
            out({"event": "error", "err": str(m.error()), "m": member})
        continue
    read += 1
    out({"p": m.partition(), "o": m.offset(), "v": m.value().decode(), "m": member})
try:
    c.commit(asynchronous=False)
except Exception as e:  # nothing consumed since the last commit, or the coordinator is moving
    out({"event": "error", "err": "final commit: %s" % e, "m": member})
c.close()
out({"event": "done", "read": read, "m": member})
