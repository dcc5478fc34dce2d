# shellcheck shell=bash
# Shared by bench/dnscarrier.sh and bench/dnstun.sh (sourced, from the
# repository's root): a temporary directory, processes killed by pid and
# network namespaces deleted on exit, and one real unbound with a stub zone
# per tunnel server, whose statistics count the queries each run made.
#
# dns_tmp        the temporary directory (removed on exit, unless KEEP_LOGS
#                is set in the environment)
# pids           every process started (killed on exit, by pid)
# dns_in         a command prefix that runs in the bench's namespace
#                (empty: this one); set by dns_netns_add's first call
# dns_stubs      "ZONE ADDR@PORT" lines, one stub zone each
# unbound_extra  more lines for unbound's server: section (say, a TLS port)
dns_tmp=$(mktemp -d)
pids=()
dns_in=()
dns_netns=()
dns_stubs=()
unbound_extra=""
dns_cleanup() {
    local p n
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    # A namespace goes once nothing runs in it; its TUN and veth links go
    # with it.
    for n in "${dns_netns[@]}"; do ip netns del "$n" 2>/dev/null || true; done
    if [[ -n ${KEEP_LOGS:-} ]]; then
        echo "logs kept in $dns_tmp" >&2
    else
        rm -rf "$dns_tmp"
    fi
}
trap dns_cleanup EXIT

# wait_log FILE PATTERN [SECONDS (10)]: waits for PATTERN in FILE; shows
# the file and fails when it does not come.
wait_log() {
    for _ in $(seq $((${3:-10} * 20))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
    cat "$1" >&2
    return 1
}

# dns_netns_add NAME: a new network namespace with its loopback up, deleted
# on exit. The first one becomes dns_in.
dns_netns_add() {
    ip netns add "$1"
    dns_netns+=("$1")
    ip -n "$1" link set lo up
    ((${#dns_in[@]})) || dns_in=(ip netns exec "$1")
}

# dns_unbound_start ADDR PORT: writes unbound's configuration (a stub zone
# per dns_stubs line, statistics read through a unix socket) and starts it
# in dns_in, then waits until it answers for the first stub zone.
dns_unbound_start() {
    local addr=$1 port=$2 line
    {
        cat <<CONF
server:
    interface: $addr@$port
    do-ip6: no
    do-daemonize: no
    use-syslog: no
    logfile: "$dns_tmp/unbound.log"
    chroot: ""
    username: ""
    directory: "$dns_tmp"
    pidfile: "$dns_tmp/unbound.pid"
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    # dns2tcpd answers only its tunnel names: a resolver minimising names
    # (RFC 9156) asks it for its zone's name first, gets nothing and gives
    # up. Off for all, so that all go through the same resolver the same way.
    qname-minimisation: no
    # Counters read (and reset) per run by dns_unbound_queries.
    statistics-cumulative: no
    extended-statistics: yes
$unbound_extra
remote-control:
    control-enable: yes
    control-interface: "$dns_tmp/unbound.ctl"
    control-use-cert: no
CONF
        for line in "${dns_stubs[@]}"; do
            set -- $line
            printf 'stub-zone:\n    name: "%s"\n    stub-addr: %s\n' "$1" "$2"
        done
    } >"$dns_tmp/unbound.conf"
    "${dns_in[@]}" unbound -d -c "$dns_tmp/unbound.conf" &
    pids+=($!)
    set -- ${dns_stubs[0]}
    for _ in $(seq 100); do
        "${dns_in[@]}" dig +short +time=1 +tries=1 -p "$port" "@$addr" "$1" SOA >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "unbound never answered for $1" >&2
    cat "$dns_tmp/unbound.log" >&2
    return 1
}

# dns_unbound_queries: the queries unbound was asked since the last call
# (which resets its counters), those it sent over TCP to a server, and the
# SERVFAIL answers it gave (a server that did not answer in time).
dns_unbound_queries() {
    unbound-control -c "$dns_tmp/unbound.conf" stats |
        awk -F= '$1 == "total.num.queries" {q = $2} $1 == "num.query.tcpout" {t = $2}
                 $1 == "num.answer.rcode.SERVFAIL" {f = $2} END {print q + 0, t + 0, f + 0}'
}
