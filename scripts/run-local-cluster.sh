#!/usr/bin/env bash
# The main job: installs what is missing, builds Synod, and runs a local cluster of agents on
# loopback (127.0.0.2, .3, ...; no root needed) until Ctrl-C, with the synod CLI itself:
# `synod init`, `synod bootstrap -c N`, and `synod teardown` on the way out.
#   scripts/run-local-cluster.sh [NODES]     (default 4, at most 200)
# The workspace (data and logs) is $SYNOD_WORKSPACE, default: a fresh directory under /tmp.
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

export SYNOD_WORKSPACE=${SYNOD_WORKSPACE:-$(mktemp -d /tmp/synod-cluster.XXXXXX)/workspace}
stop_all() {
  trap - EXIT INT TERM
  echo; echo "==> synod teardown"
  "$synod" teardown || true
  echo "data and logs kept in $SYNOD_WORKSPACE (remove with: synod teardown --purge)"
}
trap stop_all EXIT INT TERM

echo "==> synod init"
"$synod" init
echo "==> synod bootstrap -c $nodes"
"$synod" bootstrap -c "$nodes"

first=$("$synod" clients list -v | sed -n 2p | sed 's/.*IP Address \([0-9.]*\),.*/\1/')
echo; echo "==> synod neighbors --node $first"
"$synod" neighbors --node "$first" || true
echo; echo "==> synod cluster status"
"$synod" cluster status || true
echo; echo "==> synod clients list -v"
"$synod" clients list -v || true
cat <<MSG

The cluster is running (workspace $SYNOD_WORKSPACE).
Dashboard: http://$first:7400/   (API docs: http://$first:7400/docs)
The API's writes need the workspace's token (the CLI sends it; the dashboard's forms ask for it
once): the 'write' line of $SYNOD_WORKSPACE/api.tokens
Cluster traffic (peer protocol, Raft, file blocks) is TLS 1.3 with $SYNOD_WORKSPACE/cluster.key
In another terminal, try:
  export SYNOD_WORKSPACE=$SYNOD_WORKSPACE
  $synod events -f
  $synod clients list -v
  $synod kv put greeting hello && $synod kv get greeting
  $synod clients add -n 2
  $synod clients kill -c <ID>      then: $synod cluster status
  $synod server tail -f
  $synod ranks && $synod send START_TRANSMIT --from node1
  $synod commands tail -c node$nodes -f
  $synod timers add --in 30s --url http://127.0.0.1:8080/hook && $synod timers list
  echo hello > $SYNOD_WORKSPACE/folders/node1/hello.txt && cat $SYNOD_WORKSPACE/folders/node2/hello.txt
  $synod sync status && $synod sync ls
Press Ctrl-C to stop every agent (each leaves the cluster gracefully).
MSG
while sleep 3600; do :; done
