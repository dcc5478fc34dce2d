# Shared by bench/latency_ab.sh and bench/throughput_ab.sh (sourced, from the
# repository's root): free ports, waiting for a port, a ttbench destination,
# and killing by pid everything the script started.
bench=build/bench/ttbench
pids=()
kill_started() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do ss -ltn "sport = :$1" | grep -q LISTEN && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
# Starts the destination (echo, sink and generator on $dest; a banner on
# $banner) and waits until it listens.
start_destination() {
    dest=$(free_port)
    banner=$(free_port)
    "$bench" serve --port "$dest" --banner-port "$banner" >/dev/null 2>&1 &
    pids+=($!)
    wait_port "$dest"
    wait_port "$banner"
}
