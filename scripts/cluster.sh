#!/usr/bin/env bash
# Starts a local three-node reeve cluster on 127.0.0.1-3 for trying things
# by hand (a failover with kcat and kill, say). Configs and data go into a
# scratch folder that is printed; logs are prefixed by node; Ctrl-C stops
# all three.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${REEVE:-bin/reeve}
dir=${CLUSTER_DIR:-$(mktemp -d /tmp/reeve-cluster.XXXXXX)}
mkdir -p "$dir"
members='"1@127.0.0.1:9093", "2@127.0.0.2:9093", "3@127.0.0.3:9093"'
for n in 1 2 3; do
  # Node 1's embedded NATS server stands in for the site's NATS: every node
  # publishes its events there. With node 1 down, events wait in the Raft
  # outboxes and arrive when it is back.
  events='nats_url = "nats://127.0.0.1:4222"'
  [ "$n" = 1 ] && events='embedded_listen = "127.0.0.1:4222"'
  cat > "$dir/node$n.toml" <<TOML
[node]
id = $n
data_dir = "$dir/data$n"
labels = { rack = "r$n" }

[cluster]
name = "local"
initial_members = [$members]

[raft]
address = "127.0.0.$n:9093"

[kafka]
listen = "127.0.0.$n:9092"

[admin]
listen = "127.0.0.$n:9644"

[log]
format = "text"

[events]
$events
TOML
done
echo "configs and data in $dir"
echo "Kafka: 127.0.0.1:9092,127.0.0.2:9092,127.0.0.3:9092   admin: http://127.0.0.N:9644"
echo "events: $bin events --follow -c $dir/node2.toml   (NATS in node 1 on 127.0.0.1:4222)"
pids=()
stop() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait || true
}
trap stop EXIT INT TERM
for n in 1 2 3; do
  "$bin" serve -c "$dir/node$n.toml" 2>&1 | sed -u "s/^/[node$n] /" &
  pids+=("$(jobs -p | tail -1)")
done
# The pipelines' first process is reeve; kill the whole job on exit.
pids=()
for j in $(jobs -p); do pids+=("$j"); done
wait
