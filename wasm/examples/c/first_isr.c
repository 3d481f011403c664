/*
 * first_isr.c: reeve's built-in first-ISR election policy (policy.firstISR
 * in policy/policy.go) as a WebAssembly module written in freestanding C,
 * with no SDK and no libc: the ABI of docs/policy-abi.md by hand.
 *
 *   clang --target=wasm32 -O2 -ffreestanding -nostdlib -Wall -Wextra \
 *       -Wl,--no-entry -o first_isr.wasm first_isr.c
 *
 * Speaks policy ABI 2.0. Exports memory, reeve_abi_version,
 * reeve_abi_minor, reeve_alloc and reeve_decide; imports only reeve.log.
 * See README.md beside this file.
 */

#include <stddef.h>
#include <stdint.h>

#define EXPORT(name) __attribute__((export_name(name)))

/* reeve.log(level, ptr, len): a line for reeve's log. */
__attribute__((import_module("reeve"), import_name("log"))) void
reeve_log(int32_t level, const char *ptr, int32_t len);

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* The ABI version this module speaks: reeve runs it when reeve's major is
 * the same and its minor the same or later. */
#define ABI_MAJOR 2
#define ABI_MINOR 0

/* The ABI's limits (wasm/abi: MaxNodes, MaxPartitions, MaxReplicas); a
 * count above one is a malformed batch. */
#define MAX_NODES (1u << 16)
#define MAX_PARTITIONS (1u << 20)
#define MAX_REPLICAS (1u << 10)

/* The bytes of each record's fields at minor 0, after its length: a record
 * may be longer (a later minor appends fields), never shorter. The batch
 * header holds the node and partition counts; a node its id, heartbeat age
 * and label count (the labels follow); a partition its topic's length,
 * partition, reason, flags, leader, leader epoch and replica count (the
 * topic and the replicas follow); a replica its node index, flags and
 * log-end offset. Node and partition lengths are u32, the header's and a
 * replica's u16. */
#define HEADER_SIZE 8u
#define NODE_SIZE 14u
#define PARTITION_SIZE 22u
#define REPLICA_SIZE 13u

enum { REASON_LEADER_TIMEOUT = 0, REASON_CONTROLLED_SHUTDOWN = 1, REASON_REBALANCE = 2, REASON_MANUAL = 3 };
enum { KIND_NONE = 0, KIND_KEEP = 1, KIND_LEADER = 2 };

/* The most bytes one encoded decision takes: its length, kind, leader, the
 * reason's length and the longest reason below ("unclean: node " + 20
 * digits + " is alive but out of sync" is 59 bytes). An answer's header
 * takes 10: major, minor, the header's length and the decision count. */
#define DECISION_MAX (4 + 1 + 8 + 2 + 80)
#define ANSWER_HEADER 10u

#define PAGE 65536u

/* ---- memory ---------------------------------------------------------------
 * Static arenas: reeve_alloc hands out `input`, reeve_decide writes its
 * answer to `output`. Both are valid until the next call, as the ABI asks.
 * A batch or an answer too big for its arena gets pages of its own from
 * memory.grow (kept and reused for later calls); if the memory cap refuses
 * them the call traps, and reeve falls back to first-ISR for that round. */

#define INPUT_CAP (1u << 20)
#define OUTPUT_CAP (1u << 20)

static uint8_t input[INPUT_CAP];
static uint8_t output[OUTPUT_CAP];
static uint64_t node_ids[MAX_NODES]; /* the batch's node table: index -> id */

struct region {
	uint8_t *p;
	uint32_t cap;
};
static struct region big_input, big_output;

static void log_line(int32_t level, const char *s, uint32_t n) { reeve_log(level, s, (int32_t)n); }

/* buffer returns `fixed` if need fits its cap, else r's pages, grown
 * (fresh pages at the end of memory) when need does not fit them either;
 * NULL if memory cannot grow that far. */
static uint8_t *buffer(uint8_t *fixed, uint32_t fixed_cap, struct region *r, uint64_t need) {
	if (need <= fixed_cap)
		return fixed;
	if (need <= r->cap)
		return r->p;
	if (need > 0xffffffffull - PAGE)
		return NULL;
	uint32_t pages = (uint32_t)((need + PAGE - 1) / PAGE);
	int32_t old = __builtin_wasm_memory_grow(0, pages);
	if (old < 0)
		return NULL;
	r->p = (uint8_t *)((uintptr_t)old * PAGE);
	r->cap = pages * PAGE;
	return r->p;
}

/* ---- text -----------------------------------------------------------------
 * A tiny bounded string builder, for log lines and decision reasons. */

struct text {
	char *p;
	uint32_t n, cap;
};

static void put_s(struct text *t, const char *s) {
	while (*s && t->n < t->cap)
		t->p[t->n++] = *s++;
}

static void put_bytes(struct text *t, const uint8_t *s, uint32_t n) {
	for (uint32_t i = 0; i < n && t->n < t->cap; i++)
		t->p[t->n++] = (char)s[i];
}

static void put_u(struct text *t, uint64_t v) {
	char d[20];
	int i = 0;
	do {
		d[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i > 0 && t->n < t->cap)
		t->p[t->n++] = d[--i];
}

static void put_i(struct text *t, int64_t v) {
	if (v < 0) {
		put_s(t, "-");
		put_u(t, (uint64_t)0 - (uint64_t)v);
		return;
	}
	put_u(t, (uint64_t)v);
}

static char msg_buf[512];

static struct text msg(const char *prefix) {
	struct text t = {msg_buf, 0, sizeof msg_buf};
	put_s(&t, "first_isr (C): ");
	put_s(&t, prefix);
	return t;
}

/* ---- decoding -------------------------------------------------------------
 * A reader with a sticky error, like wasm/abi's: after the first bad read
 * every later read returns zero, and `why` holds the first reason. It reads
 * up to `end`, which record() narrows to one record at a time. */

struct reader {
	const uint8_t *p;
	uint32_t end, off;
	int bad;
	struct text why;
};

static void bad(struct reader *r) { r->bad = 1; }

static const uint8_t *take(struct reader *r, uint32_t n) {
	if (r->bad)
		return NULL;
	if (r->end - r->off < n) {
		bad(r);
		r->why = msg("malformed batch: truncated at byte ");
		put_u(&r->why, r->off);
		put_s(&r->why, " (need ");
		put_u(&r->why, n);
		put_s(&r->why, " more, have ");
		put_u(&r->why, r->end - r->off);
		put_s(&r->why, ")");
		return NULL;
	}
	const uint8_t *b = r->p + r->off;
	r->off += n;
	return b;
}

static uint8_t u8(struct reader *r) {
	const uint8_t *b = take(r, 1);
	return b ? b[0] : 0;
}

static uint16_t u16(struct reader *r) {
	const uint8_t *b = take(r, 2);
	return b ? (uint16_t)(b[0] | b[1] << 8) : 0;
}

static uint32_t u32(struct reader *r) {
	const uint8_t *b = take(r, 4);
	return b ? (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24 : 0;
}

static uint64_t u64(struct reader *r) {
	const uint8_t *b = take(r, 8);
	if (!b)
		return 0;
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

/* str: a u16 length and that many bytes, returned in place. */
static const uint8_t *str(struct reader *r, uint32_t *n) {
	*n = u16(r);
	const uint8_t *b = take(r, *n);
	if (!b)
		*n = 0;
	return b;
}

/* count checks n against max and against the bytes left, at least min_size
 * each, so a lying count is caught before anything is decoded for it. */
static uint32_t count(struct reader *r, uint32_t n, uint32_t max, uint32_t min_size) {
	if (r->bad)
		return 0;
	if (n > max || (uint64_t)n * min_size > r->end - r->off) {
		bad(r);
		r->why = msg("malformed batch: count ");
		put_u(&r->why, n);
		put_s(&r->why, " at byte ");
		put_u(&r->why, r->off);
		put_s(&r->why, " exceeds the limit (");
		put_u(&r->why, max);
		put_s(&r->why, ") or the message");
		return 0;
	}
	return n;
}

/* A record: its length (u16, or u32 if wide), then its fields. record()
 * reads the length, checks that the record holds at least size bytes and
 * fits in what is left, and narrows the reader to it; leave() moves past
 * the record, skipping the fields of a later minor this module does not
 * know, and widens the reader again. */
struct record {
	uint32_t end, outer_end;
};

static struct record record(struct reader *r, int wide, uint32_t size, const char *what) {
	uint32_t n = wide ? u32(r) : u16(r);
	struct record rec = {r->off, r->end};
	if (r->bad)
		return rec;
	if (n < size || n > r->end - r->off) {
		bad(r);
		r->why = msg("malformed batch: ");
		put_s(&r->why, what);
		put_s(&r->why, " at byte ");
		put_u(&r->why, r->off);
		put_s(&r->why, " is ");
		put_u(&r->why, n);
		put_s(&r->why, n < size ? " bytes long, shorter than its fields" : " bytes long, past the end of what holds it");
		return rec;
	}
	rec.end = r->off + n;
	r->end = rec.end;
	return rec;
}

static void leave(struct reader *r, struct record rec) {
	if (!r->bad)
		r->off = rec.end;
	r->end = rec.outer_end;
}

/* ---- encoding ------------------------------------------------------------- */

struct writer {
	uint8_t *p;
	uint32_t off;
};

static void w8(struct writer *w, uint8_t v) { w->p[w->off++] = v; }

static void w16(struct writer *w, uint16_t v) {
	w8(w, (uint8_t)v);
	w8(w, (uint8_t)(v >> 8));
}

static void w32(struct writer *w, uint32_t v) {
	for (int i = 0; i < 4; i++)
		w8(w, (uint8_t)(v >> (8 * i)));
}

static void w64(struct writer *w, uint64_t v) {
	for (int i = 0; i < 8; i++)
		w8(w, (uint8_t)(v >> (8 * i)));
}

/* decision writes one answer; the reason is "<a><node><b>", without the
 * node if has_node is 0. Node id 0 means "no leader" in reeve, so a replica
 * listed with id 0 cannot be elected: like policy.firstISR, whose
 * Decision{Leader: 0} is "none", that answer is kind none. */
static void decision(struct writer *w, uint8_t kind, uint64_t leader, const char *a, int has_node, uint64_t node,
                     const char *b) {
	if (kind == KIND_LEADER && leader == 0)
		kind = KIND_NONE;
	uint32_t at = w->off; /* the decision's length, written below */
	w->off += 4;
	w8(w, kind);
	w64(w, kind == KIND_LEADER ? leader : 0);
	uint32_t reason_at = w->off;
	w->off += 2;
	struct text t = {(char *)w->p + w->off, 0, DECISION_MAX - 15};
	put_s(&t, a);
	if (has_node) {
		put_u(&t, node);
		put_s(&t, b);
	}
	w->off += t.n;
	struct writer len = {w->p, at};
	w32(&len, w->off - at - 4);
	len.off = reason_at;
	w16(&len, (uint16_t)t.n);
}

/* ---- exports -------------------------------------------------------------- */

EXPORT("reeve_abi_version") int32_t reeve_abi_version(void) { return ABI_MAJOR; }

EXPORT("reeve_abi_minor") int32_t reeve_abi_minor(void) { return ABI_MINOR; }

EXPORT("reeve_alloc") uint8_t *reeve_alloc(int32_t size) {
	uint8_t *p = size < 0 ? NULL : buffer(input, INPUT_CAP, &big_input, (uint32_t)size);
	if (!p) {
		struct text t = msg("cannot allocate ");
		put_i(&t, size);
		put_s(&t, " bytes for the batch: memory cannot grow");
		log_line(LOG_ERROR, t.p, t.n);
		__builtin_trap();
	}
	return p;
}

static int64_t fail(struct text t) {
	log_line(LOG_ERROR, t.p, t.n);
	return -1;
}

EXPORT("reeve_decide") int64_t reeve_decide(const uint8_t *ptr, int32_t len) {
	uint64_t mem = (uint64_t)__builtin_wasm_memory_size(0) * PAGE;
	if (len < 0 || (uint64_t)(uintptr_t)ptr + (uint32_t)len > mem) {
		struct text t = msg("reeve_decide: input ");
		put_u(&t, (uintptr_t)ptr);
		put_s(&t, "+");
		put_i(&t, len);
		put_s(&t, " is outside memory");
		return fail(t);
	}
	struct reader r = {ptr, (uint32_t)len, 0, 0, {0}};

	/* The versions, then the header. A batch of a later minor is read as
	 * minor 0: its records are longer, and leave() skips what they add. */
	uint16_t major = u16(&r), minor = u16(&r);
	if (!r.bad && major != ABI_MAJOR) {
		struct text t = msg("malformed batch: policy ABI ");
		put_u(&t, major);
		put_s(&t, ".");
		put_u(&t, minor);
		put_s(&t, ", want 2.x");
		return fail(t);
	}
	struct record header = record(&r, 0, HEADER_SIZE, "batch header");
	uint32_t nodes = u32(&r), parts = u32(&r);
	leave(&r, header);
	/* Every node and partition takes at least its length and its fields. */
	if (!r.bad && (nodes > MAX_NODES || parts > MAX_PARTITIONS ||
	               (uint64_t)nodes * (4 + NODE_SIZE) + (uint64_t)parts * (4 + PARTITION_SIZE) > r.end - r.off)) {
		struct text t = msg("malformed batch: ");
		put_u(&t, nodes);
		put_s(&t, " nodes and ");
		put_u(&t, parts);
		put_s(&t, " partitions exceed the limits or the message");
		return fail(t);
	}

	/* The node table: only ids matter to first-ISR; heartbeat ages, labels
	 * and whatever a later minor adds are skipped with the record. */
	for (uint32_t i = 0; i < nodes && !r.bad; i++) {
		struct record node = record(&r, 1, NODE_SIZE, "node");
		node_ids[i] = u64(&r);
		leave(&r, node);
	}
	if (r.bad)
		return fail(r.why);

	uint8_t *out = buffer(output, OUTPUT_CAP, &big_output, ANSWER_HEADER + (uint64_t)parts * DECISION_MAX);
	if (!out) {
		struct text t = msg("cannot allocate the answer for ");
		put_u(&t, parts);
		put_s(&t, " partitions: memory cannot grow");
		return fail(t);
	}
	struct writer w = {out, 0};
	w16(&w, ABI_MAJOR);
	w16(&w, ABI_MINOR);
	w16(&w, 4); /* the header's length: the decision count */
	w32(&w, parts);

	for (uint32_t i = 0; i < parts; i++) {
		struct record part = record(&r, 1, PARTITION_SIZE, "partition");
		uint32_t topic_len;
		const uint8_t *topic = str(&r, &topic_len);
		int32_t partition = (int32_t)u32(&r);
		uint8_t reason = u8(&r);
		uint8_t unclean = u8(&r) & 1; /* other bits are a later minor's */
		uint64_t leader = u64(&r);
		(void)u32(&r); /* leader_epoch */
		uint32_t replicas = count(&r, u16(&r), MAX_REPLICAS, 2 + REPLICA_SIZE);
		if (r.bad)
			return fail(r.why);
		if (reason > REASON_MANUAL) {
			struct text t = msg("malformed batch: ");
			put_bytes(&t, topic, topic_len);
			put_s(&t, "-");
			put_i(&t, partition);
			put_s(&t, ": unknown reason ");
			put_u(&t, reason);
			return fail(t);
		}

		/* One pass over the replicas, in preference order, keeps the first
		 * of each kind of candidate first-ISR looks for. When the leader
		 * is going (a timeout or a shutdown) it is never a candidate. */
		int leaving = reason == REASON_LEADER_TIMEOUT || reason == REASON_CONTROLLED_SHUTDOWN;
		int clean = 0, any = 0;
		uint64_t clean_id = 0, any_id = 0;
		for (uint32_t j = 0; j < replicas; j++) {
			struct record rep = record(&r, 0, REPLICA_SIZE, "replica");
			uint32_t node = u32(&r);
			uint8_t flags = u8(&r);
			(void)u64(&r); /* log_end_offset */
			leave(&r, rep);
			if (r.bad)
				return fail(r.why);
			if (node >= nodes) {
				struct text t = msg("malformed batch: ");
				put_bytes(&t, topic, topic_len);
				put_s(&t, "-");
				put_i(&t, partition);
				put_s(&t, ": replica node index ");
				put_u(&t, node);
				put_s(&t, " of ");
				put_u(&t, nodes);
				put_s(&t, " nodes");
				return fail(t);
			}
			uint64_t id = node_ids[node];
			int alive = flags & 1, in_isr = (flags >> 1) & 1; /* other bits are a later minor's */
			if (leaving && id == leader)
				continue;
			if (!clean && alive && in_isr)
				clean = 1, clean_id = id;
			if (!any && alive)
				any = 1, any_id = id;
		}
		leave(&r, part);
		if (r.bad)
			return fail(r.why);

		/* The first live in-sync candidate leads (kept if it leads
		 * already); else, with unclean election, the first live one; else
		 * none. */
		if (clean && clean_id == leader)
			decision(&w, KIND_KEEP, 0, "the current leader is the first in-sync replica", 0, 0, "");
		else if (clean)
			decision(&w, KIND_LEADER, clean_id, "first in-sync replica alive (node ", 1, clean_id, ")");
		else if (unclean && any)
			decision(&w, KIND_LEADER, any_id, "unclean: node ", 1, any_id, " is alive but out of sync");
		else
			decision(&w, KIND_NONE, 0, "no live in-sync replica", 0, 0, "");
	}
	/* Bytes after the last partition are a later minor's. */
	return (int64_t)((uint64_t)(uintptr_t)out << 32 | w.off);
}
