#!/usr/bin/env bash
# The main job: installs what is missing, builds Synod, and runs a local cluster of agents on
# loopback (127.0.0.2, .3, ...; no root needed) until Ctrl-C.
#   scripts/run-local-cluster.sh [NODES]     (default 4, at most 200)
# Data and logs go to $SYNOD_RUN_DIR (default: a fresh directory under /tmp).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
nodes=${1:-4}
if ! [[ "$nodes" =~ ^[0-9]+$ ]] || (( nodes < 1 || nodes > 200 )); then
  echo "usage: $0 [NODES]   (NODES: 1-200, default 4)" >&2
  exit 2
fi
cd "$root"
scripts/install-deps.sh
echo "==> building synod (Release)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target synod -j "$(nproc)" | tail -n 1
synod=$root/build/synod

run_dir=${SYNOD_RUN_DIR:-$(mktemp -d /tmp/synod-cluster.XXXXXX)}
mkdir -p "$run_dir"
pids=()
stop_all() {
  trap - EXIT INT TERM
  if (( ${#pids[@]} )); then
    echo; echo "==> stopping ${#pids[@]} agents"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  echo "data and logs kept in $run_dir"
}
trap stop_all EXIT INT TERM

echo "==> starting $nodes agents on loopback (data and logs in $run_dir)"
for i in $(seq 1 "$nodes"); do
  ip=127.0.0.$((i + 1))
  "$synod" agent --name "node$i" --bind "$ip" --data-dir "$run_dir/node$i" \
    --bootstrap-expect "$nodes" >"$run_dir/node$i.log" 2>&1 &
  pids+=($!)
  echo "    node$i on $ip (api http://$ip:7400, log $run_dir/node$i.log)"
done

# Wait (bounded) until every agent sees all the others and they form one cluster, or one dies.
deadline=$((SECONDS + 20))
while :; do
  for idx in "${!pids[@]}"; do
    if ! kill -0 "${pids[$idx]}" 2>/dev/null; then
      echo "agent node$((idx + 1)) exited at start; the end of its log:" >&2
      tail -n 5 "$run_dir/node$((idx + 1)).log" >&2
      exit 1
    fi
  done
  complete=0
  for i in $(seq 1 "$nodes"); do
    count=$("$synod" neighbors --node "127.0.0.$((i + 1))" --json 2>/dev/null | grep -c '"id"' || true)
    (( count == nodes - 1 )) && complete=$((complete + 1))
  done
  members=$("$synod" clients list --node 127.0.0.2 2>/dev/null | wc -l || true)
  (( complete == nodes && members == nodes )) && break
  if (( SECONDS > deadline )); then
    echo "warning: after 20 s $complete of $nodes agents see all the others;" \
      "the cluster has $members members" >&2
    break
  fi
  sleep 0.3
done

for i in $(seq 1 "$nodes"); do
  echo; echo "==> neighbour table of node$i (127.0.0.$((i + 1)))"
  "$synod" neighbors --node "127.0.0.$((i + 1))" || true
done
echo; echo "==> the cluster"
"$synod" cluster status --node 127.0.0.2 || true
echo
"$synod" clients list -v --node 127.0.0.2 || true
cat <<MSG

The cluster is running. Try:
  $synod cluster status --node 127.0.0.3
  $synod kv put greeting hello --node 127.0.0.3 && $synod kv get greeting --node 127.0.0.4
  $synod neighbors --node 127.0.0.2
  curl -s http://127.0.0.2:7400/v1/cluster
  kill -9 the leader's agent (see its pid with: pgrep -af 'synod agent') and watch another take over
Press Ctrl-C to stop every agent (each leaves the cluster gracefully).
MSG
wait
