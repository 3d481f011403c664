"""kafka-python cases of the interop tier, run by run.sh under /usr/bin/python3.

    kafka_python.py roundtrip BOOTSTRAP TOPIC COUNT CODEC
    kafka_python.py admin BOOTSTRAP TOPIC
    kafka_python.py group BOOTSTRAP TOPIC GROUP

Each prints what it checked and exits 0, or prints the first difference (or
the client's exception) on stderr and exits 1. No api_version is set
anywhere: kafka-python must infer the broker's version from ApiVersions.
"""

import logging
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import NoError

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


def produce_keyed(bootstrap, topic, first, count):
    """Produces records k<i>/v<i> for i in [first, first+count), acks=all,
    and returns them as a set of (key, value)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                             request_timeout_ms=TIMEOUT_MS, max_block_ms=TIMEOUT_MS)
    sent = set()
    futures = []
    for i in range(first, first + count):
        k, v = b"k%04d" % i, b"v%04d" % i
        sent.add((k, v))
        futures.append(producer.send(topic, key=k, value=v))
    producer.flush(timeout=TIMEOUT_MS / 1000)
    parts = set()
    for f in futures:
        parts.add(f.get(timeout=TIMEOUT_MS / 1000).partition)
    producer.close(timeout=5)
    print("producer: %d records (%d..%d) acked over partitions %s" % (count, first, first + count - 1, sorted(parts)))
    return sent


def group_consumer(bootstrap, topic, group):
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
        request_timeout_ms=TIMEOUT_MS + 5000,
    )
    return consumer


def read_exactly(consumer, topic, want, grace_s=1.5):
    """Polls until len(want) records arrived (or TIMEOUT_MS passed), then
    goes on polling for grace_s to catch any record beyond them. Fails unless
    the records read are exactly `want`, each once."""
    got = []
    deadline = time.time() + TIMEOUT_MS / 1000
    stop = None
    while True:
        now = time.time()
        if stop is None and (len(got) >= len(want) or now > deadline):
            stop = now + grace_s
        if stop is not None and now > stop:
            break
        for tp, msgs in consumer.poll(timeout_ms=200).items():
            if tp.topic != topic:
                fail("consumer: record from topic %r, want %r" % (tp.topic, topic))
            got.extend((m.key, m.value) for m in msgs)
    dups = len(got) - len(set(got))
    missing = sorted(want - set(got))
    extra = sorted(set(got) - want)
    if dups or missing or extra:
        fail("consumer: read %d records (%d duplicates), want exactly %d; missing %d %r...; unexpected %d %r..."
             % (len(got), dups, len(want), len(missing), missing[:5], len(extra), extra[:5]))
    return got


def committed_offsets(consumer, tps):
    return {tp.partition: consumer.committed(tp) for tp in tps}


def group(bootstrap, topic, group_id):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS)
    try:
        first = produce_keyed(bootstrap, topic, 0, 300)

        # 1. A fresh group, offsets reset to earliest: all 300, then commit.
        c1 = group_consumer(bootstrap, topic, group_id)
        read_exactly(c1, topic, first)
        tps = sorted(c1.assignment(), key=lambda tp: tp.partition)
        if len(tps) != 3:
            fail("consumer 1: assignment %r, want the topic's 3 partitions" % (tps,))
        c1.commit()
        ends = c1.end_offsets(tps)
        got = committed_offsets(c1, tps)
        want = {tp.partition: ends[tp] for tp in tps}
        if got != want:
            fail("consumer 1: committed() after commit() = %r, want the end offsets %r" % (got, want))
        c1.close()
        print("consumer 1: read 300, committed %r" % (got,))

        offs = admin.list_consumer_group_offsets(group_id)
        got = {tp.partition: om.offset for tp, om in offs.items() if tp.topic == topic}
        if got != want or len(offs) != len(got):
            fail("list_consumer_group_offsets(%r) = %r, want %r on %s" % (group_id, offs, want, topic))
        print("list_consumer_group_offsets: %r" % (got,))

        # 2. The same group resumes from the commit: only the records
        # produced after it.
        second = produce_keyed(bootstrap, topic, 300, 100)
        c2 = group_consumer(bootstrap, topic, group_id)
        read_exactly(c2, topic, second)
        print("consumer 2: read exactly the 100 records produced after the commit")

        # While consumer 2 is a member: the group is listed and described.
        groups = admin.list_consumer_groups()
        if (group_id, "consumer") not in groups:
            fail("list_consumer_groups() = %r, want it to hold (%r, 'consumer')" % (groups, group_id))
        print("list_consumer_groups: %r" % (groups,))
        desc = admin.describe_consumer_groups([group_id])
        if len(desc) != 1:
            fail("describe_consumer_groups([%r]) = %r, want one group" % (group_id, desc))
        d = desc[0]
        if (d.error_code, d.group, d.state, d.protocol_type) != (0, group_id, "Stable", "consumer") or len(d.members) != 1:
            fail("describe_consumer_groups([%r]) = %r, want a Stable consumer group with 1 member" % (group_id, d))
        m = d.members[0]
        assigned = sorted(p for t, ps in m.member_assignment.assignment for p in ps if t == topic)
        if assigned != [0, 1, 2] or topic not in m.member_metadata.subscription:
            fail("describe_consumer_groups: member %r, want it subscribed to %r and assigned partitions 0-2" % (m, topic))
        print("describe_consumer_groups: state %s, protocol %s, member %s assigned %s [%s]"
              % (d.state, d.protocol, m.member_id, topic, ",".join(map(str, assigned))))

        c2.commit()
        ends = c2.end_offsets(tps)
        want = {tp.partition: ends[tp] for tp in tps}
        c2.close()
        offs = admin.list_consumer_group_offsets(group_id)
        got = {tp.partition: om.offset for tp, om in offs.items() if tp.topic == topic}
        if got != want or sum(got.values()) != 400:
            fail("list_consumer_group_offsets(%r) after the second commit = %r, want %r (400 in all)" % (group_id, got, want))
        print("list_consumer_group_offsets: %r" % (got,))

        # close() sent LeaveGroup and had its answer; Kafka ends the
        # rebalance that the last member's leaving starts at once (nobody is
        # left to wait for), so the group is Empty already. Recorded, not
        # fatal at once, so the deletion below is still checked.
        problems = []
        d = admin.describe_consumer_groups([group_id])[0]
        if d.state != "Empty" or d.members:
            problems.append("describe_consumer_groups([%r]) right after the last member's LeaveGroup = %r, "
                            "want state Empty with no members (as Kafka answers)" % (group_id, d))
            print("PROBLEM: " + problems[-1])
        else:
            print("describe_consumer_groups: %s after close" % d.state)

        res = admin.delete_consumer_groups([group_id])
        if res != [(group_id, NoError)]:
            fail("delete_consumer_groups([%r]) = %r, want [(%r, NoError)]" % (group_id, res, group_id))
        print("delete_consumer_groups: %r" % (res,))
        groups = admin.list_consumer_groups()
        if any(g == group_id for g, _ in groups):
            fail("list_consumer_groups() after delete = %r, still holds %r" % (groups, group_id))
        offs = admin.list_consumer_group_offsets(group_id)
        if offs:
            fail("list_consumer_group_offsets(%r) after delete = %r, want none" % (group_id, offs))
        print("after delete: not listed, no committed offsets")
        if problems:
            fail("\n".join(problems))
    finally:
        admin.close()


def main():
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    cases = {"roundtrip": roundtrip, "admin": admin, "group": group}
    if len(sys.argv) < 2 or sys.argv[1] not in cases:
        fail(__doc__)
    cases[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
