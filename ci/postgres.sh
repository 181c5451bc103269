# Sourced, not run: start_postgres installs PostgreSQL (Debian's package) if it is missing, starts a
# throwaway server on 127.0.0.1 on a free port, trusts local connections, and exports PGPORT and
# POSTGRES_URL; stop_postgres (set as the EXIT trap) stops it and deletes its data.
start_postgres() {
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  PGDATA=$(mktemp -d /tmp/braintrust-ops-pg.XXXXXX)
  PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  chown postgres:postgres "$PGDATA"
  runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA/data" -A trust -U postgres >/dev/null
  trap stop_postgres EXIT
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA/data" -w -l "$PGDATA/server.log" \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDATA -c fsync=off" start >/dev/null
  export PGPORT POSTGRES_URL="postgres://postgres@127.0.0.1:$PGPORT"
}

stop_postgres() {
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$PGDATA"
}
