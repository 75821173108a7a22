#!/usr/bin/env bash
# bench-smtp.sh: the SMTP listener's speed, side by side in one run.
#
# postfix's smtp-source (Debian package postfix; only the tool is used, the
# daemon is never configured or started) sends MAILS mails of 4 KB over
# SESSIONS persistent sessions (-d) to:
#
#   (a) a minimal go-smtp server that reads each mail and discards it
#       (scripts/smtpbench discard): the ceiling of the protocol alone;
#   (b) trackerd serve on SQLite (synchronous=FULL: durable commits);
#   (c) trackerd serve on PostgreSQL, a throwaway server started by
#       scripts/with-postgres.sh, with synchronous_commit switched back
#       ON for the benchmark's database (the test server runs with it off).
#
# Each mail opens a new issue (smtp-source sends the same subject, a new
# Message-ID each time), all from one sender: the serve runs switch the
# per-sender rate limit off (max_new_issues_per_sender_hour = 0), since
# any limit below the mail count would quarantine the rest. Then scripts/smtpbench latency offers RATE
# mails/s for DURATION over SESSIONS connections to (b) and (c) and
# reports the time from the end of DATA (the final ".") to the reply. The
# peak RSS of each serve process (VmHWM) is read before it is stopped.
#
# Usage: scripts/bench-smtp.sh            (MAILS=20000 SESSIONS=20 SIZE=4096 RATE=1000 DURATION=10s)
#
# It prints a Markdown table with the date, the machine and its load.
set -euo pipefail

MAILS=${MAILS:-20000}
DISCARD_MAILS=${DISCARD_MAILS:-$((MAILS * 5))}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-4096}
RATE=${RATE:-1000}
DURATION=${DURATION:-10s}

cd "$(dirname "$0")/.."

# Run everything under a throwaway PostgreSQL.
if [ -z "${TRACKERD_TEST_POSTGRES:-}" ]; then
	exec scripts/with-postgres.sh "$0" "$@"
fi

smtp_source=$(command -v smtp-source || true)
for d in /usr/sbin /usr/local/sbin /sbin; do
	[ -z "$smtp_source" ] && [ -x "$d/smtp-source" ] && smtp_source=$d/smtp-source
done
if [ -z "$smtp_source" ]; then
	echo "bench-smtp: smtp-source not found: apt-get install postfix (the daemon need not run)" >&2
	exit 1
fi

work=$(mktemp -d /tmp/trackerd-bench-smtp.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

log() { echo "bench-smtp: $*" >&2; }

go build -o "$work/trackerd" ./cmd/trackerd
go build -o "$work/smtpbench" ./scripts/smtpbench

. scripts/ports.sh # freeport, waitport (the working directory is the checkout)

now() { date +%s.%N; }

# source_run PORT COUNT: runs smtp-source, prints mails/s.
source_run() {
	local start end
	start=$(now)
	"$smtp_source" -d -s "$SESSIONS" -m "$2" -l "$SIZE" -S "bench mail" \
		-f bench@example.org -t tracker@localhost -M client.example.org "127.0.0.1:$1"
	end=$(now)
	python3 -c "print(f'{$2/($end-$start):.0f}')"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# (a) the discard server.
port=$(freeport)
"$work/smtpbench" discard -listen "127.0.0.1:$port" 2>"$work/discard.log" &
pids+=($!)
waitport "$port"
log "(a) discard: $DISCARD_MAILS mails"
rate_a=$(source_run "$port" "$DISCARD_MAILS")
kill "${pids[-1]}"

# serve_run NAME STORE_TOML: (b) or (c). Sets rate, filed, latency, rss.
serve_run() {
	local name=$1 store=$2 dir=$work/$1 port pid
	mkdir -p "$dir"
	port=$(freeport)
	cat >"$dir/trackerd.toml" <<-EOF
		[tracker]
		data_dir = "$dir/data"
		$store
		[smtp]
		listen = "127.0.0.1:$port"
		max_connections_per_ip = 100
		[mailgw]
		max_new_issues_per_sender_hour = 0
		[web]
		listen = ""
	EOF
	(cd "$dir" && exec "$work/trackerd" -config "$dir/trackerd.toml" serve) 2>"$dir/serve.log" &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 1 300); do
		grep -q "trackerd ready" "$dir/serve.log" && break
		sleep 0.1
	done
	grep -q "trackerd ready" "$dir/serve.log" || { log "$name: serve did not start"; cat "$dir/serve.log" >&2; exit 1; }
	log "$name: $MAILS mails"
	rate=$(source_run "$port" "$MAILS")
	filed=$("$work/trackerd" -config "$dir/trackerd.toml" inbound list -json -status filed | grep -c '"status": "filed"' || true)
	log "$name: latency at $RATE mails/s for $DURATION"
	latency=$("$work/smtpbench" latency -addr "127.0.0.1:$port" -rate "$RATE" -duration "$DURATION" -conns "$SESSIONS" -size "$SIZE")
	rss=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$pid/status")
	kill -TERM "$pid"
	wait "$pid" || { log "$name: serve exited $?"; tail -20 "$dir/serve.log" >&2; }
	deferred=$(grep -c 'msg="mail deferred"' "$dir/serve.log" || true)
}

serve_run sqlite ""
rate_b=$rate filed_b=$filed lat_b=$latency rss_b=$rss def_b=$deferred

# A database of its own with durable commits.
pgdb="bench_$$"
psql_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)/psql
command -v psql >/dev/null && psql_bin=psql
"$psql_bin" "$TRACKERD_TEST_POSTGRES" -qc "CREATE DATABASE $pgdb" -c "ALTER DATABASE $pgdb SET synchronous_commit = on"
pgdsn=$(echo "$TRACKERD_TEST_POSTGRES" | sed "s/dbname=[^ ]*/dbname=$pgdb/")
sync_commit=$("$psql_bin" "$pgdsn" -Atc "SHOW synchronous_commit")
serve_run postgres "[store]
driver = \"postgres\"
dsn = \"$pgdsn\""
rate_c=$rate filed_c=$filed lat_c=$latency rss_c=$rss def_c=$deferred

pick() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)

cat <<EOF

SMTP listener, $(date -u +%Y-%m-%d), $(nproc) cores ($cpu), load average before: $load_before
smtp-source -d -s $SESSIONS -l $SIZE; latency: $RATE mails/s offered for $DURATION over $SESSIONS connections.
PostgreSQL synchronous_commit for (c): $sync_commit

| target | mails | mails/s | vs (a) | filed | deferred (451) | p50 / p99 end of DATA to reply at $RATE/s | serve peak RSS |
|---|---|---|---|---|---|---|---|
| (a) go-smtp, discard | $DISCARD_MAILS | $rate_a | 1.00 | – | – | – | – |
| (b) trackerd, SQLite | $MAILS | $rate_b | $(python3 -c "print(f'{$rate_b/$rate_a:.2f}')") | $filed_b | $def_b | $(pick "$lat_b" p50) / $(pick "$lat_b" p99) (achieved $(pick "$lat_b" achieved), failed $(pick "$lat_b" failed)) | ${rss_b} MiB |
| (c) trackerd, PostgreSQL | $MAILS | $rate_c | $(python3 -c "print(f'{$rate_c/$rate_a:.2f}')") | $filed_c | $def_c | $(pick "$lat_c" p50) / $(pick "$lat_c" p99) (achieved $(pick "$lat_c" achieved), failed $(pick "$lat_c" failed)) | ${rss_c} MiB |

load average after: $(cut -d' ' -f1-3 /proc/loadavg)
EOF
