#!/usr/bin/env bash
# with-postgres.sh CMD [ARGS...]
#
# Runs CMD with TRACKERD_TEST_POSTGRES set to the DSN of a throwaway
# PostgreSQL server, and returns CMD's exit status. The server lives in a
# temporary directory, listens on a Unix socket only (no TCP port to clash
# with), trusts local connections, and is stopped and deleted when the
# script exits, however it exits.
#
# If TRACKERD_TEST_POSTGRES is already set, CMD just runs against it.
#
# PostgreSQL's binaries are taken from PATH, else from the newest
# /usr/lib/postgresql/*/bin; if there are none, Debian's postgresql package
# is installed (as root; the distribution's own cluster is neither created
# nor started). initdb refuses to run as root, so as root the server runs as
# the unprivileged user trackerd-pg, created if missing.
#
# Example: scripts/with-postgres.sh go test -race ./store/
set -euo pipefail

if [ "$#" -eq 0 ]; then
	echo "usage: $0 CMD [ARGS...]" >&2
	exit 2
fi

if [ -n "${TRACKERD_TEST_POSTGRES:-}" ]; then
	exec "$@"
fi

log() { echo "with-postgres: $*" >&2; }

# find_bindir prints the directory holding initdb, pg_ctl and pg_isready.
find_bindir() {
	local d
	if command -v initdb >/dev/null 2>&1; then
		d=$(dirname "$(readlink -f "$(command -v initdb)")")
		if [ -x "$d/pg_ctl" ]; then
			echo "$d"
			return 0
		fi
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -n -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

# install_postgres installs Debian's postgresql package without creating or
# starting the distribution's cluster.
install_postgres() {
	if [ "$(id -u)" -ne 0 ]; then
		log "PostgreSQL is not installed and installing it needs root: apt-get install postgresql"
		exit 1
	fi
	if ! command -v apt-get >/dev/null 2>&1; then
		log "PostgreSQL is not installed and there is no apt-get; install PostgreSQL's server binaries"
		exit 1
	fi
	log "installing PostgreSQL (apt-get install postgresql)"
	# No main cluster: postgresql-common reads this drop-in directory.
	mkdir -p /etc/postgresql-common/createcluster.d
	echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/99-trackerd-no-main.conf
	# No service start during installation (invoke-rc.d honours policy-rc.d).
	local policy=/usr/sbin/policy-rc.d made_policy=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		made_policy=1
	fi
	local rc=0
	DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null || rc=$?
	if [ -n "$made_policy" ]; then
		rm -f "$policy"
	fi
	if [ "$rc" -ne 0 ]; then
		log "apt-get install postgresql failed ($rc)"
		exit 1
	fi
}

bindir=$(find_bindir) || {
	install_postgres
	bindir=$(find_bindir) || {
		log "no initdb after installing postgresql"
		exit 1
	}
}

# as_pg runs a command as the user that owns the server.
pguser=$(id -un)
as_pg() { "$@"; }
if [ "$(id -u)" -eq 0 ]; then
	pguser=trackerd-pg
	if ! id "$pguser" >/dev/null 2>&1; then
		useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$pguser"
	fi
	if command -v runuser >/dev/null 2>&1; then
		as_pg() { runuser -u "$pguser" -- "$@"; }
	else
		as_pg() {
			local q
			q=$(printf '%q ' "$@")
			su -s /bin/sh "$pguser" -c "$q"
		}
	fi
fi

# The socket path must stay under the 107-byte limit of sun_path: use /tmp,
# not a possibly long $TMPDIR.
dir=$(mktemp -d /tmp/trackerd-pg.XXXXXX)
cleanup() {
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# The test process, whoever runs it, must reach the socket in $dir.
chmod 0755 "$dir"
if [ "$pguser" != "$(id -un)" ]; then
	chown "$pguser:" "$dir"
fi

locale=C
if locale -a 2>/dev/null | grep -qix 'c.utf-\?8'; then
	locale=C.UTF-8 # lower() and full-text search fold non-ASCII letters too
fi
if ! as_pg "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale="$locale" \
	--no-sync >"$dir/initdb.log" 2>&1; then
	log "initdb failed:"
	cat "$dir/initdb.log" >&2
	exit 1
fi

# Unix socket only. Test settings: synchronous_commit=off lets a commit
# return before its WAL is flushed, which only a crash of the server itself
# could expose (the tests kill trackerd, never the server); fsync stays on,
# so the data directory is never corrupt.
if ! as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
	-o "-c listen_addresses='' -c unix_socket_directories='$dir' -c max_connections=200 \
-c shared_buffers=128MB -c synchronous_commit=off \
-c log_min_messages=warning -c log_statement=none ${TRACKERD_PG_OPTS:-}" start >/dev/null; then
	log "the server did not start:"
	cat "$dir/server.log" >&2 || true
	exit 1
fi

ready=
for _ in $(seq 1 100); do
	if "$bindir/pg_isready" -q -h "$dir" -U postgres -d postgres; then
		ready=1
		break
	fi
	sleep 0.1
done
if [ -z "$ready" ]; then
	log "the server is not accepting connections:"
	cat "$dir/server.log" >&2 || true
	exit 1
fi

export TRACKERD_TEST_POSTGRES="host=$dir dbname=postgres user=postgres sslmode=disable"
log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') at $dir"

set +e
"$@"
status=$?
set -e
exit "$status"
