# shellcheck shell=bash
# Mongrel2 1.12.2 for brubeck: one server on loopback, one catch-all route to
# one ZeroMQ handler. A library: source it, then
#
#   m2_prepare DIR HTTP_PORT SEND_PORT RECV_PORT [json|tnetstring]
#   m2_render [options]  # any shape of config, printed (options below)
#   m2_load DIR          # DIR/mongrel2.conf -> DIR/config.sqlite, checked
#   m2_start DIR         # foreground mongrel2 in the background; waits for HTTP
#   m2_stop DIR          # SIGINT to exactly that pid, bounded wait, SIGKILL
#
# This file is the one source of truth for the configuration: deploy/run,
# bench/e2e.sh and the C++ integration harness (tests/integration) all call
# m2_prepare, and deploy/mongrel2-config (production shapes: static files,
# several handlers, an upload store) calls m2_render, which writes the text
# for both. Mongrel2 facts it relies on (checked with Mongrel2 1.12.2):
#   - it chroots into DIR when root (chroot='./' relative to its working
#     directory) and needs run/, logs/, tmp/ there; paths in the config are
#     inside the chroot;
#   - m2sh needs LOGNAME, must run from DIR, and exits 0 on syntax errors, so
#     its output is checked;
#   - a Host header that matches no host goes to default_host, so
#     "127.0.0.1:PORT", "localhost" or none at all reach the handler.
# Functions return non-zero on failure and never `exit`: callers decide.
# Tunables: M2_START_TIMEOUT (s, default 10), M2_STOP_TIMEOUT (s, default 10).

if [[ -n ${M2_SH_LOADED:-} ]]; then
  return 0
fi
M2_SH_LOADED=1
M2_PID=""

m2__log() { printf 'mongrel2.sh: %s\n' "$*" >&2; }

m2__uuid() {
  local u
  if [[ -r /proc/sys/kernel/random/uuid ]]; then
    u=$(</proc/sys/kernel/random/uuid)
  else
    u=$(LOGNAME=${LOGNAME:-brubeck} m2sh uuid)
  fi
  printf '%s\n' "$u"
}

m2__is_port() { [[ $1 =~ ^[0-9]+$ ]] && (($1 > 0 && $1 < 65536)); }

# m2_render [options]: prints a mongrel2.conf. The one place that writes
# Mongrel2 configuration text: m2_config (tests, deploy/run, benchmarks) and
# deploy/mongrel2-config (production) both call it. Options (defaults):
#   --name NAME                server name (brubeck)
#   --uuid UUID                server uuid (a new one)
#   --host NAME                virtual host and default_host (127.0.0.1); a
#                              request whose Host matches no host goes there
#   --bind ADDR                bind_addr (127.0.0.1; 0.0.0.0 for every address)
#   --port PORT                HTTP port (6767)
#   --chroot DIR               Mongrel2's chroot, relative to the folder it is
#                              started from (./); needs run/, logs/, tmp/
#   --handler PREFIX=SEND,RECV a route to handler processes (repeatable; default
#                              /=tcp://127.0.0.1:9997,tcp://127.0.0.1:9996); every
#                              process started with --send-spec SEND --recv-spec
#                              RECV gets a share (ZeroMQ PUSH, round-robin)
#   --send-ident UUID          the first handler's send_ident (a new one each)
#   --protocol json|tnetstring what Mongrel2 sends the handlers (json)
#   --static PREFIX=DIR        serve files under DIR (inside the chroot) at
#                              PREFIX with Mongrel2's Dir handler (repeatable)
#   --index FILE               Dir's index file (index.html)
#   --max-inline BYTES         limits.content_length: larger bodies are spooled
#                              to the upload store (Mongrel2's default, 20480)
#   --upload-store DIR         folder of the spooled uploads, inside the chroot
#                              (/tmp); the app's upload_store setting names it
#                              from outside (<mongrel2_chroot>/tmp by default)
#   --logs DIR, --run DIR      log and pid folders inside the chroot (/logs, /run)
#   --daemonize                fork into the background (default: foreground,
#                              as systemd and the tests want)
m2_render() {
  local name=brubeck uuid="" host=127.0.0.1 bind=127.0.0.1 port=6767 chroot=./
  local protocol=json index=index.html max_inline="" upload_store=/tmp logs=/logs run=/run
  local daemonize=0 first_ident=""
  local -a handlers=() statics=()
  while (($#)); do
    case $1 in
      --daemonize)
        daemonize=1
        shift
        continue
        ;;
      --name | --uuid | --host | --bind | --port | --chroot | --handler | --send-ident | \
        --protocol | --static | --index | --max-inline | --upload-store | --logs | --run)
        if (($# < 2)); then
          m2__log "$1 needs a value"
          return 2
        fi
        ;;
      *)
        m2__log "unknown option '$1'"
        return 2
        ;;
    esac
    case $1 in
      --name) name=$2 ;;
      --uuid) uuid=$2 ;;
      --host) host=$2 ;;
      --bind) bind=$2 ;;
      --port) port=$2 ;;
      --chroot) chroot=$2 ;;
      --handler) handlers+=("$2") ;;
      --send-ident) first_ident=$2 ;;
      --protocol) protocol=$2 ;;
      --static) statics+=("$2") ;;
      --index) index=$2 ;;
      --max-inline) max_inline=$2 ;;
      --upload-store) upload_store=$2 ;;
      --logs) logs=$2 ;;
      --run) run=$2 ;;
    esac
    shift 2
  done
  m2__is_port "$port" || {
    m2__log "bad port '$port'"
    return 2
  }
  case $protocol in
    json | tnetstring) ;;
    *)
      m2__log "bad protocol '$protocol' (json or tnetstring)"
      return 2
      ;;
  esac
  if [[ -n $max_inline && ! $max_inline =~ ^[0-9]+$ ]]; then
    m2__log "bad --max-inline '$max_inline' (bytes)"
    return 2
  fi
  local text
  for text in "$name" "$uuid" "$host" "$bind" "$chroot" "$index" "$upload_store" "$logs" "$run" \
    "$first_ident" "${handlers[@]}" "${statics[@]}"; do
    if [[ $text == *[\'\\]* || $text == *$'\n'* ]]; then
      m2__log "a quote, backslash or newline in '$text'"
      return 2
    fi
  done
  ((${#handlers[@]})) || handlers=("/=tcp://127.0.0.1:9997,tcp://127.0.0.1:9996")
  [[ -n $uuid ]] || uuid=$(m2__uuid) || return 1

  local out i=0 h prefix specs send recv ident dir routes=""
  out='# Generated by deploy/mongrel2.sh (m2_render): change its options, not this file.'$'\n'
  for h in "${handlers[@]}"; do
    prefix=${h%%=*} specs=${h#*=}
    send=${specs%%,*} recv=${specs#*,}
    if [[ $h != *=*,* || -z $send || -z $recv || $prefix != /* ]]; then
      m2__log "bad --handler '$h' (PREFIX=SEND_SPEC,RECV_SPEC, PREFIX starting with /)"
      return 2
    fi
    ident=$first_ident
    if ((i > 0)) || [[ -z $ident ]]; then
      ident=$(m2__uuid) || return 1
    fi
    out+="handler_$i = Handler(
    send_spec='${send}',
    send_ident='${ident}',
    recv_spec='${recv}',
    recv_ident='',
    protocol='${protocol}'
)

"
    routes+="        '${prefix}': handler_$i,"$'\n'
    ((++i))
  done
  i=0
  for h in "${statics[@]}"; do
    prefix=${h%%=*} dir=${h#*=}
    if [[ $h != *=* || $prefix != /* || -z $dir ]]; then
      m2__log "bad --static '$h' (PREFIX=DIR, PREFIX starting with /)"
      return 2
    fi
    # Dir's base is relative to the chroot and ends with a slash.
    dir=${dir#/}
    dir=${dir%/}/
    out+="static_$i = Dir(
    base='${dir}',
    index_file='${index}',
    default_ctype='application/octet-stream'
)

"
    routes+="        '${prefix}': static_$i,"$'\n'
    ((++i))
  done
  # m2sh refuses a trailing comma in a dict.
  routes=${routes%,$'\n'}
  out+="main_host = Host(
    name='${host}',
    routes={
${routes}
    }
)

main = Server(
    uuid='${uuid}',
    name='${name}',
    chroot='${chroot}',
    access_log='${logs%/}/access.log',
    error_log='${logs%/}/error.log',
    pid_file='${run%/}/mongrel2.pid',
    default_host='${host}',
    bind_addr='${bind}',
    port=${port},
    hosts=[main_host]
)

settings = {
    'server.daemonize': ${daemonize},
"
  [[ -z $max_inline ]] || out+="    'limits.content_length': ${max_inline},"$'\n'
  out+="    'upload.temp_store': '${upload_store%/}/upload.XXXXXX'
}

servers = [main]
"
  printf '%s' "$out"
}

# m2_config HTTP_PORT SEND_PORT RECV_PORT PROTOCOL SERVER_UUID SEND_IDENT
# Prints the test and development configuration: one server on loopback,
# one catch-all route to one handler.
m2_config() {
  m2_render --uuid "$5" --send-ident "$6" --protocol "$4" --port "$1" \
    --handler "/=tcp://127.0.0.1:$2,tcp://127.0.0.1:$3"
}

# m2_info DIR KEY: a value recorded by m2_prepare (uuid, http_port,
# send_port, recv_port, send_spec, recv_spec, protocol).
m2_info() {
  local dir=$1 want=$2 key value
  [[ -r $dir/m2.info ]] || {
    m2__log "$dir/m2.info missing: run m2_prepare first"
    return 1
  }
  while IFS='=' read -r key value; do
    if [[ $key == "$want" ]]; then
      printf '%s\n' "$value"
      return 0
    fi
  done <"$dir/m2.info"
  m2__log "no '$want' in $dir/m2.info"
  return 1
}

# m2_load DIR: loads DIR/mongrel2.conf into a fresh DIR/config.sqlite with
# m2sh (from DIR, as Mongrel2 wants); fails with m2sh's output on an error.
m2_load() {
  local dir=$1 out rc=0
  command -v m2sh >/dev/null 2>&1 || {
    m2__log "m2sh not found (install mongrel2-core: deploy/install-deps)"
    return 1
  }
  rm -f "$dir/config.sqlite"
  out=$(cd "$dir" && LOGNAME=${LOGNAME:-brubeck} m2sh load -config mongrel2.conf \
    -db config.sqlite 2>&1) || rc=$?
  # m2sh exits 0 on a syntax error: its output is the only signal. A good
  # load prints nothing.
  if ((rc != 0)) || [[ $out == *ERROR* || $out == *rror* ]] || [[ ! -s $dir/config.sqlite ]]; then
    m2__log "m2sh load failed (exit $rc) for $dir/mongrel2.conf:"
    printf '%s\n' "$out" >&2
    return 1
  fi
}

# m2_prepare DIR HTTP_PORT SEND_PORT RECV_PORT [PROTOCOL]
m2_prepare() {
  if (($# < 4 || $# > 5)); then
    m2__log "usage: m2_prepare DIR HTTP_PORT SEND_PORT RECV_PORT [json|tnetstring]"
    return 2
  fi
  local dir=$1 http_port=$2 send_port=$3 recv_port=$4 protocol=${5:-json}
  local p
  for p in "$http_port" "$send_port" "$recv_port"; do
    m2__is_port "$p" || {
      m2__log "bad port '$p'"
      return 2
    }
  done
  case $protocol in
    json | tnetstring) ;;
    *)
      m2__log "bad protocol '$protocol' (json or tnetstring)"
      return 2
      ;;
  esac
  command -v m2sh >/dev/null 2>&1 || {
    m2__log "m2sh not found (install mongrel2-core: deploy/install-deps)"
    return 1
  }

  mkdir -p "$dir/run" "$dir/logs" "$dir/tmp" || return 1
  dir=$(cd "$dir" && pwd) || return 1
  local uuid ident
  uuid=$(m2__uuid) && ident=$(m2__uuid) || return 1

  m2_config "$http_port" "$send_port" "$recv_port" "$protocol" "$uuid" "$ident" \
    >"$dir/mongrel2.conf" || return 1
  m2_load "$dir" || return 1

  {
    printf 'uuid=%s\n' "$uuid"
    printf 'send_ident=%s\n' "$ident"
    printf 'http_port=%s\n' "$http_port"
    printf 'send_port=%s\n' "$send_port"
    printf 'recv_port=%s\n' "$recv_port"
    printf 'send_spec=tcp://127.0.0.1:%s\n' "$send_port"
    printf 'recv_spec=tcp://127.0.0.1:%s\n' "$recv_port"
    printf 'protocol=%s\n' "$protocol"
  } >"$dir/m2.info"
}

# m2_port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
m2_port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# m2_alive PID: the process exists and is not a zombie.
m2_alive() {
  local pid=$1 stat state
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  read -r stat 2>/dev/null <"/proc/$pid/stat" || return 1
  state=${stat##*) }
  state=${state%% *}
  [[ $state != Z && $state != X ]]
}

# m2_free_port [EXCLUDED_PORT...]: prints a port in 20000-31999 (below Linux's
# ephemeral range) that no TCP socket uses right now. Racy by nature: good
# enough for tests and benchmarks on one machine.
m2_free_port() {
  local used=" " f local_addr port i
  for f in /proc/net/tcp /proc/net/tcp6; do
    [[ -r $f ]] || continue
    while read -r _ local_addr _; do
      [[ $local_addr == *:* ]] || continue
      used+="$((16#${local_addr##*:})) "
    done <"$f"
  done
  used+="$* "
  for ((i = 0; i < 500; i++)); do
    port=$((20000 + RANDOM % 12000))
    [[ $used == *" $port "* ]] && continue
    m2_port_open "$port" && continue
    printf '%s\n' "$port"
    return 0
  done
  m2__log "no free port found"
  return 1
}

# m2_wait_http PORT [TIMEOUT_S] [PID]: waits until PORT accepts connections;
# fails early if PID (when given) dies.
m2_wait_http() {
  local port=$1 timeout=${2:-10} pid=${3:-} i
  for ((i = 0; i < timeout * 20; i++)); do
    if [[ -n $pid ]] && ! m2_alive "$pid"; then
      return 1
    fi
    m2_port_open "$port" && return 0
    sleep 0.05
  done
  return 1
}

# m2_kill_wait PID SIGNAL TIMEOUT_S: sends SIGNAL to exactly PID, waits for
# it to go (bounded), then SIGKILL. Reaps it when it is this shell's child.
m2_kill_wait() {
  local pid=$1 sig=$2 timeout=$3 i
  if m2_alive "$pid"; then
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 20; i++)); do
      m2_alive "$pid" || break
      sleep 0.05
    done
    if m2_alive "$pid"; then
      m2__log "pid $pid ignored SIG$sig for ${timeout}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do
        m2_alive "$pid" || break
        sleep 0.05
      done
    fi
  fi
  wait "$pid" 2>/dev/null || true
  ! m2_alive "$pid"
}

# m2_start DIR: starts `mongrel2 config.sqlite UUID` from DIR (foreground
# mode, backgrounded here), records its pid in M2_PID and DIR/m2.pid, and
# waits (M2_START_TIMEOUT) until its HTTP port accepts connections.
m2_start() {
  local dir=$1 uuid port pid
  dir=$(cd "$dir" && pwd) || return 1
  uuid=$(m2_info "$dir" uuid) && port=$(m2_info "$dir" http_port) || return 1
  command -v mongrel2 >/dev/null 2>&1 || {
    m2__log "mongrel2 not found (install mongrel2-core: deploy/install-deps)"
    return 1
  }
  if [[ -r $dir/m2.pid ]] && m2_alive "$(<"$dir/m2.pid")"; then
    m2__log "a mongrel2 started from $dir is still running (pid $(<"$dir/m2.pid"))"
    return 1
  fi
  if m2_port_open "$port"; then
    m2__log "port $port is already in use: stop whatever listens there first"
    return 1
  fi
  # A stale pid file (after a SIGKILL) makes mongrel2 refuse to start when
  # its pid was reused; the control socket is re-created.
  rm -f "$dir/run/mongrel2.pid" "$dir/run/control"

  (cd "$dir" && exec mongrel2 config.sqlite "$uuid") </dev/null >"$dir/mongrel2.out" 2>&1 &
  pid=$!
  M2_PID=$pid
  printf '%s\n' "$pid" >"$dir/m2.pid"

  if ! m2_wait_http "$port" "${M2_START_TIMEOUT:-10}" "$pid"; then
    m2__log "mongrel2 (pid $pid) did not accept on port $port; its output:"
    tail -n 20 "$dir/mongrel2.out" >&2 || true
    tail -n 20 "$dir/logs/error.log" >&2 2>/dev/null || true
    m2_stop "$dir"
    return 1
  fi
  if ! m2_alive "$pid"; then
    m2__log "mongrel2 (pid $pid) exited right after starting"
    tail -n 20 "$dir/mongrel2.out" >&2 || true
    return 1
  fi
}

# m2_stop DIR: stops the mongrel2 that m2_start started from DIR (and only
# it): SIGINT, then SIGKILL after M2_STOP_TIMEOUT seconds.
m2_stop() {
  local dir=$1 pid comm
  [[ -r $dir/m2.pid ]] || return 0
  pid=$(<"$dir/m2.pid")
  if m2_alive "$pid"; then
    read -r comm 2>/dev/null <"/proc/$pid/comm" || comm=""
    if [[ $comm != mongrel2 ]]; then
      # The pid was reused by someone else: leave it alone.
      m2__log "pid $pid is '$comm', not mongrel2: not signalling it"
    elif ! m2_kill_wait "$pid" INT "${M2_STOP_TIMEOUT:-10}"; then
      m2__log "mongrel2 (pid $pid) did not stop"
      return 1
    fi
  else
    wait "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/m2.pid"
  [[ $M2_PID != "$pid" ]] || M2_PID=""
}
