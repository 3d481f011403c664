"""kafka-python cases of the interop tier, run by run.sh under /usr/bin/python3.

    kafka_python.py roundtrip BOOTSTRAP TOPIC COUNT CODEC
    kafka_python.py admin BOOTSTRAP TOPIC

Each prints what it checked and exits 0, or prints the first difference (or
the client's exception) on stderr and exits 1. No api_version is set
anywhere: kafka-python must infer the broker's version from ApiVersions.
"""

import logging
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

TIMEOUT_MS = 10000


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def roundtrip(bootstrap, topic, count, codec):
    count = int(count)
    sent = []
    for i in range(count):
        key = b"k%04d" % i
        value = b"value-%04d-" % i + b"x" * (i % 97)
        headers = [("h1", b"v1"), ("seq", b"%d" % i)]
        sent.append((key, value, headers))

    kw = {} if codec == "none" else {"compression_type": codec}
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        request_timeout_ms=TIMEOUT_MS,
        max_block_ms=TIMEOUT_MS,
        **kw,
    )
    print("producer: broker version inferred as %s" % (producer.config["api_version"],))
    futures = [producer.send(topic, key=k, value=v, headers=h) for k, v, h in sent]
    producer.flush(timeout=TIMEOUT_MS / 1000)
    offsets = {}
    for f in futures:
        md = f.get(timeout=TIMEOUT_MS / 1000)
        offsets.setdefault(md.partition, []).append(md.offset)
    rate = producer.metrics().get("producer-metrics", {}).get("compression-rate-avg")
    producer.close(timeout=5)
    if codec != "none":
        # The producer compresses every batch when compression_type is set;
        # a rate under 1 shows the batches sent really were compressed.
        if rate is None or not rate < 1.0:
            fail("producer: compression-rate-avg = %r with compression_type=%r, want < 1" % (rate, codec))
        print("producer: %s compression-rate-avg %.3f" % (codec, rate))
    for p, offs in sorted(offsets.items()):
        if offs != list(range(offs[0], offs[0] + len(offs))):
            fail("partition %d: acked offsets are not contiguous: %s" % (p, offs[:20]))
    print("producer: %d acked over partitions %s" % (count, sorted(offsets)))

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=TIMEOUT_MS,
        request_timeout_ms=TIMEOUT_MS + 5000,
    )
    parts = None
    deadline = time.time() + TIMEOUT_MS / 1000
    while time.time() < deadline:
        parts = consumer.partitions_for_topic(topic)
        if parts:
            break
        time.sleep(0.2)
    if not parts:
        fail("consumer: partitions_for_topic(%r) = %r" % (topic, parts))
    consumer.assign([TopicPartition(topic, p) for p in sorted(parts)])

    got = []
    for msg in consumer:
        if msg.topic != topic:
            fail("consumer: message from topic %r, want %r" % (msg.topic, topic))
        got.append((msg.key, msg.value, [(k, bytes(v)) for k, v in msg.headers]))
        if len(got) >= count:
            break
    consumer.close()
    print("consumer: %d read from partitions %s" % (len(got), sorted(parts)))

    if len(got) != count:
        fail("consumer: read %d messages, want %d (consumer_timeout_ms=%d)" % (len(got), count, TIMEOUT_MS))
    got.sort()
    sent.sort()
    for g, s in zip(got, sent):
        if g != s:
            fail("consumer: got %r, want %r" % (g, s))


def admin(bootstrap, topic):
    client = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS)
    try:
        resp = client.create_topics([NewTopic(name=topic, num_partitions=2, replication_factor=1)],
                                    timeout_ms=TIMEOUT_MS)
        errs = [(t, code) for t, code, *_ in resp.topic_errors if code != 0]
        if errs:
            fail("create_topics: errors %r in %r" % (errs, resp))
        print("create_topics: %r" % (resp.topic_errors,))

        if topic not in client.list_topics():
            fail("list_topics() after create = %r, want it to hold %r" % (client.list_topics(), topic))
        desc = client.describe_topics([topic])
        if len(desc) != 1 or desc[0]["error_code"] != 0 or len(desc[0]["partitions"]) != 2:
            fail("describe_topics(%r) = %r, want one topic with 2 partitions" % (topic, desc))
        print("describe_topics: %d partitions" % len(desc[0]["partitions"]))

        resp = client.delete_topics([topic], timeout_ms=TIMEOUT_MS)
        errs = [(t, code) for t, code, *_ in resp.topic_error_codes if code != 0]
        if errs:
            fail("delete_topics: errors %r in %r" % (errs, resp))
        print("delete_topics: %r" % (resp.topic_error_codes,))

        deadline = time.time() + TIMEOUT_MS / 1000
        while topic in client.list_topics():
            if time.time() > deadline:
                fail("list_topics() %ds after delete still holds %r" % (TIMEOUT_MS / 1000, topic))
            time.sleep(0.2)
        print("list_topics: %r gone" % topic)
    finally:
        client.close()


def main():
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    cases = {"roundtrip": roundtrip, "admin": admin}
    if len(sys.argv) < 2 or sys.argv[1] not in cases:
        fail(__doc__)
    cases[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
