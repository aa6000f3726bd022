# Redis and PostgreSQL on loopback for the demo (deploy/run) and benchmarks:
# one place that knows how to start and stop them. Source it, then:
#
#   redis_start DIR PORT   → REDIS_PID; redis_stop DIR
#   pg_start DIR PORT      → PG_CONNINFO; pg_stop DIR
#
# Everything lives under DIR (data, logs, sockets, pid files); each server is
# stopped by the pid it recorded there, never by name.

redis_start() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  redis_stop "$dir"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
  local i
  for ((i = 0; i < 100; i++)); do
    if redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then
      REDIS_PID=$(cat "$dir/redis.pid")
      return 0
    fi
    sleep 0.05
  done
  echo "services: redis-server did not answer on port $port; see $dir/redis.log" >&2
  return 1
}

redis_stop() {
  local dir=$1 pid
  [[ -f $dir/redis.pid ]] || return 0
  pid=$(cat "$dir/redis.pid")
  if kill "$pid" 2>/dev/null; then
    local i
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
  fi
  rm -f "$dir/redis.pid"
}

# PostgreSQL refuses to run as root: as root the cluster belongs to the
# `postgres` user, in a folder it can reach (so not under /root).
_pg_as() {
  if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

_pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x $d/pg_ctl ]] && { echo "$d"; return 0; }
  done
  echo "services: no PostgreSQL server binaries under /usr/lib/postgresql" >&2
  return 1
}

pg_start() {
  local dir=$1 port=$2 bin
  bin=$(_pg_bin) || return 1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if ((EUID == 0)); then
    chown postgres "$dir"
    # Every parent must be traversable by postgres.
    if ! runuser -u postgres -- test -x "$dir"; then
      echo "services: postgres cannot reach $dir (use a folder under /tmp)" >&2
      return 1
    fi
  fi
  if [[ ! -f $dir/data/PG_VERSION ]]; then
    _pg_as "$bin/initdb" -A trust -U postgres -N -D "$dir/data" >"$dir/initdb.log" 2>&1 || {
      echo "services: initdb failed; see $dir/initdb.log" >&2
      return 1
    }
  fi
  pg_stop "$dir"
  _pg_as "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null || {
    echo "services: PostgreSQL did not start; see $dir/postgres.log" >&2
    return 1
  }
  PG_CONNINFO="host=127.0.0.1 port=$port user=postgres dbname=postgres"
}

pg_stop() {
  local dir=$1 bin
  [[ -f $dir/data/postmaster.pid ]] || return 0
  bin=$(_pg_bin) || return 0
  _pg_as "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}
