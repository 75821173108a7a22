#!/usr/bin/env bash
# bench-notify.sh: how fast notifications leave the outbox for an SMTP
# relay, measured against postfix's smtp-sink (which must be installed;
# its daemon is not needed). Prints the machine's load before each run.
#
#   scripts/bench-notify.sh            # both measurements
#   TRACKERD_BENCH_MAILS=20000 scripts/bench-notify.sh
#
# 1. In process: notify.Worker.Flush of 20,000 queued notifications
#    (SQLite; and PostgreSQL when TRACKERD_TEST_POSTGRES is set, e.g.
#    under scripts/with-postgres.sh) to smtp-sink over
#    outgoing.connections (8) reused connections.
# 2. The whole binary: `trackerd import mbox` of a generated archive
#    (10,000 mails by default), whose flush sends the queued
#    notifications to smtp-sink; the figure is that flush's rate.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== $(date -u +%FT%TZ) $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
go test ./notify -run '^$' -bench 'WorkerSmtpSink' -benchtime 20000x -count 3

echo "== $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)"
go test ./cmd/trackerd -run '^$' -bench 'NotifySmtpSink' -benchtime 1x -count 3 -timeout 30m
echo "== done, load: $(cut -d' ' -f1-3 /proc/loadavg)"
