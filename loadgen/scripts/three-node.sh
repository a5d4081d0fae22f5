#!/usr/bin/env bash
# three-node.sh starts a three-node NodalMerge cluster on disk (fsync on),
# on 127.0.0.1, under a fresh temporary folder, and removes all of it
# (processes and files) when it exits.
#
#   loadgen/scripts/three-node.sh                  # start, run the admin-API figures, stop
#   loadgen/scripts/three-node.sh security         # start, run the locked-room and revocation figures, stop
#   loadgen/scripts/three-node.sh CMD [ARGS...]    # start, run CMD with the variables below, stop
#   loadgen/scripts/three-node.sh bash             # start and keep it up in a sub-shell
#
# CMD sees: NM (server binary), NMB (nodalmerge-bench), NM_WORK (the
# folder), NM_LEADER (admin address of node 1, the bootstrapped leader),
# NM_ADMIN_ALL (the three admin addresses, comma-separated), NM_FOLLOWER
# (admin address of node 2), NM_WS_LEADER (node 1's WebSocket URL),
# NM_WS_ALL (the three WebSocket URLs, comma-separated), NM_LEADER_PID,
# NM_CONN (the --tls-ca/--tls-cert/--tls-key/--token-file flags of an
# operator, for nodalmerge-bench admin-*, joinstorm --locked and revoke,
# and for nodalmerge admin). For example, revocation across the cluster:
#
#   loadgen/scripts/three-node.sh bash
#   $NMB revoke --url "$NM_WS_ALL" --admin "$NM_LEADER" $NM_CONN --sessions 300 --rounds 5
#   $NMB revoke --url "$NM_WS_ALL" --admin "$NM_FOLLOWER" $NM_CONN --by peer --peers 100
#
# Environment: NM (default /tmp/nm) and NMB (default /tmp/nmb) are built
# from this tree unless SKIP_BUILD=1; BASE_PORT (default 7878) gives node k
# the ports BASE+100(k-1) (WebSocket), +1 (admin), +2 (raft); KEEP=1 leaves
# the folder in place; DURATION (default 10s) is each figure's window.
# PPROF=1 gives node k a metrics listener on BASE+100(k-1)+3 with Go
# profiles (--metrics-addr, --pprof; CMD sees NM_LEADER_METRICS), for
# `go tool pprof http://$NM_LEADER_METRICS/debug/pprof/profile?seconds=10`.
# SERVE_FLAGS is added verbatim to every node's `serve` (word-split).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NM=${NM:-/tmp/nm}
NMB=${NMB:-/tmp/nmb}
BASE_PORT=${BASE_PORT:-7878}
DURATION=${DURATION:-10s}

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
	(cd "$repo" && go build -o "$NM" ./cmd/nodalmerge && go build -o "$NMB" ./cmd/nodalmerge-bench)
fi

NM_WORK=$(mktemp -d "${TMPDIR:-/tmp}/nm-three-node.XXXXXX")
pids=()
cleanup() {
	local code=$?
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	if [[ ${KEEP:-0} == 1 ]]; then
		echo "three-node: kept $NM_WORK" >&2
	else
		rm -rf "$NM_WORK"
	fi
	exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port() { echo $((BASE_PORT + 100 * ($1 - 1) + $2)); } # node, offset

"$NM" cert create-ca --dir "$NM_WORK/ca" >/dev/null
for k in 1 2 3; do
	"$NM" cert create-node --ca-dir "$NM_WORK/ca" --dir "$NM_WORK/n$k" --node-id "n$k" --hosts 127.0.0.1 >/dev/null
done
"$NM" cert create-client --ca-dir "$NM_WORK/ca" --dir "$NM_WORK/ops" --name bench >/dev/null

# start_node K [--bootstrap | --join ADDR]: runs node K in the background
# and waits for its banner (printed once it serves).
start_node() {
	local k=$1
	shift
	local extra=()
	if [[ ${PPROF:-0} == 1 ]]; then
		extra+=(--metrics-addr "127.0.0.1:$(port "$k" 3)" --pprof)
	fi
	# shellcheck disable=SC2206 # SERVE_FLAGS is a list of flags
	extra+=(${SERVE_FLAGS:-})
	"$NM" serve --store "$NM_WORK/d$k" --node-id "n$k" \
		--tls-ca "$NM_WORK/n$k/ca.pem" --tls-cert "$NM_WORK/n$k/node.pem" --tls-key "$NM_WORK/n$k/node-key.pem" \
		--listen "127.0.0.1:$(port "$k" 0)" --admin-listen "127.0.0.1:$(port "$k" 1)" --raft-listen "127.0.0.1:$(port "$k" 2)" \
		--log-level warn "${extra[@]}" "$@" >"$NM_WORK/n$k.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 300); do
		grep -qs 'admin gRPC' "$NM_WORK/n$k.log" && return 0
		kill -0 "${pids[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "three-node: node $k did not start; its log:" >&2
	cat "$NM_WORK/n$k.log" >&2
	exit 1
}

NM_LEADER=127.0.0.1:$(port 1 1)
NM_LEADER_METRICS=127.0.0.1:$(port 1 3)
NM_FOLLOWER=127.0.0.1:$(port 2 1)
NM_ADMIN_ALL=$NM_LEADER,$NM_FOLLOWER,127.0.0.1:$(port 3 1)
NM_WS_LEADER=ws://127.0.0.1:$(port 1 0)
NM_WS_ALL=$NM_WS_LEADER,ws://127.0.0.1:$(port 2 0),ws://127.0.0.1:$(port 3 0)
NM_CONN="--tls-ca $NM_WORK/ca/ca.pem --tls-cert $NM_WORK/ops/bench.pem --tls-key $NM_WORK/ops/bench-key.pem --token-file $NM_WORK/d1/bootstrap-operator.token"

start_node 1 --bootstrap
NM_LEADER_PID=${pids[0]}
start_node 2 --join "$NM_LEADER"
start_node 3 --join "$NM_LEADER"

# Wait until node 1 leads three voters. (A joiner's banner comes after its
# join is committed; this also checks that the operator material works.)
for _ in $(seq 300); do
	# shellcheck disable=SC2086 # NM_CONN is a list of flags
	if members=$("$NM" admin --admin "$NM_LEADER" $NM_CONN members 2>/dev/null) &&
		[[ $(grep -c ' yes ' <<<"$members") == 3 ]] && grep -q 'n1 .*leader' <<<"$members"; then
		break
	fi
	sleep 0.1
done
# shellcheck disable=SC2086
"$NM" admin --admin "$NM_LEADER" $NM_CONN members
export NM NMB NM_WORK NM_LEADER NM_FOLLOWER NM_LEADER_METRICS NM_ADMIN_ALL NM_WS_LEADER NM_WS_ALL NM_LEADER_PID NM_CONN

# figure runs one nodalmerge-bench figure with the operator flags, under
# a header with the load average.
figure() {
	echo
	echo "### $*   [load average: $(cut -d' ' -f1-3 /proc/loadavg)]"
	# shellcheck disable=SC2086
	"$NMB" "$@" -q $NM_CONN || echo "(the run above had errors)"
}

# The locked-room and revocation figures of loadgen/DESIGN.md ("Locked
# rooms and revocation"). SESSIONS (default 300) and ROUNDS (default 5)
# shape the revoke runs.
if [[ ${1:-} == security ]]; then
	s=${SESSIONS:-300} r=${ROUNDS:-5}
	figure joinstorm --url "$NM_WS_LEADER" --server-pid "$NM_LEADER_PID" --duration "$DURATION" --concurrency 16
	figure joinstorm --url "$NM_WS_LEADER" --server-pid "$NM_LEADER_PID" --duration "$DURATION" --concurrency 16 --locked --admin "$NM_LEADER"
	figure revoke --url "$NM_WS_ALL" --admin "$NM_LEADER" --sessions "$s" --rounds "$r" --by token
	figure revoke --url "$NM_WS_ALL" --admin "$NM_LEADER" --sessions "$s" --rounds "$r" --by peer
	figure revoke --url "$NM_WS_ALL" --admin "$NM_FOLLOWER" --sessions "$s" --rounds "$r" --by token
	figure revoke --url "$NM_WS_ALL" --admin "$NM_LEADER" --sessions "$s" --rounds "$r" --by peer --peers "$s"
	exit
fi

if [[ $# -gt 0 ]]; then
	"$@"
	exit
fi

# The admin-API figures of loadgen/DESIGN.md ("Admin API").
admin_figure() { figure "$@" --server-pid "$NM_LEADER_PID" --duration "$DURATION"; }
admin_figure admin-writes --admin "$NM_LEADER" --clients 1
admin_figure admin-writes --admin "$NM_LEADER" --clients 64
admin_figure admin-writes --admin "$NM_ADMIN_ALL" --clients 64
admin_figure admin-reads --admin "$NM_LEADER" --clients 1
admin_figure admin-reads --admin "$NM_LEADER" --clients 1 --stale
admin_figure admin-reads --admin "$NM_LEADER" --clients 64
admin_figure admin-reads --admin "$NM_LEADER" --clients 64 --stale
admin_figure admin-reads --admin "$NM_ADMIN_ALL" --clients 64
admin_figure admin-reads --admin "$NM_ADMIN_ALL" --clients 64 --stale
