#!/usr/bin/env bash
# Installs the Debian 12 packages tt needs to build, test and benchmark.
# Idempotent: only missing packages are installed, and apt's lists are
# refreshed only when something is missing.
set -euo pipefail

packages=(
  # build
  build-essential pkg-config meson ninja-build clang libclang-rt-14-dev
  libuv1-dev libssl-dev libwslay-dev libnftables-dev
  # dns+https:// speaks HTTP/2 to the resolver through nghttp2
  libnghttp2-dev
  # unit tests
  libcriterion-dev
  # end-to-end tests and the demo: real peers
  python3 python3-pytest curl nginx-light iproute2
  # --redirect's tests look at the ruleset with nft
  nftables
  # the independent tt/1 implementation that makes docs/tt1-vectors.md
  python3-cryptography
  # benchmarks: the peers tt is compared with (openssl makes stunnel's
  # certificate; bench/run.py and bench/transparent.py run their own sshd, not
  # the system's; sshuttle is what bench/transparent.py compares --redirect with)
  microsocks shadowsocks-libev stunnel4 openssl openssh-server openssh-client sshuttle
  v2ray shadowsocks-v2ray-plugin
  # --resolver's and --dns's end-to-end tests, and bench/transparent.py's DNS
  # phase: a real DNS server on the far side
  unbound
  # the DNS tunnel's tests: dig asks its server as any client would
  bind9-dnsutils
  # bench/dnscarrier.sh: the DNS tunnels dns:// is compared with
  dns2tcp iodine
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then
    sudo="sudo"
  else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
# Package scripts may start services (shadowsocks-libev's ss-server); tt's
# tests start their own peers, so stop the packaged ones to free their ports.
# The same for an sshd that this run installed (never one that was already
# there: someone may log in through it).
if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
  $sudo systemctl disable --now shadowsocks-libev.service >/dev/null 2>&1 || true
  if [[ " ${missing[*]} " == *" unbound "* ]]; then
    $sudo systemctl disable --now unbound.service >/dev/null 2>&1 || true
  fi
  if [[ " ${missing[*]} " == *" iodine "* ]]; then
    $sudo systemctl disable --now iodined.service >/dev/null 2>&1 || true
  fi
  if [[ " ${missing[*]} " == *" openssh-server "* ]]; then
    $sudo systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true
  fi
fi
