#!/usr/bin/env bash
# Installs what building and testing this library needs and is missing:
# libmemcached's headers and libraries, a memcached server for the tests and
# the demo, pkg-config and a C compiler for cgo, Debian's pylibmc (the
# tests compare behaviors against it), and Cyrus SASL's tools and PLAIN and
# sasldb plugins (the integration tests start a memcached with -S and make
# its password database with saslpasswd2), and twemproxy (nutcracker: the
# proxy tests start it in front of memcached). Debian/Ubuntu only; elsewhere it
# says what to install. Safe to run again: it installs nothing that is
# present.
set -euo pipefail

packages=(
  libmemcached-dev pkg-config gcc libc6-dev # the binding (cgo)
  libssl-dev # libmemcached.pc says Requires.private: libcrypto; libmemcached-dev does not pull it
  memcached python3-pylibmc # the tests' servers and the peer they compare with
  nutcracker # twemproxy: the proxy tests put it in front of memcached
  sasl2-bin libsasl2-modules libsasl2-modules-db # memcached -S and saslpasswd2 for the SASL tests
  iptables # the network-partition test cuts a container's traffic with it
  ca-certificates # module downloads through the Go proxy (https)
  g++ # memctl bench compares with douban/libmc, which is C++
)

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  for tool in pkg-config memcached nutcracker cc; do
    command -v "$tool" >/dev/null 2>&1 || missing_tool=1
  done
  if [ -n "${missing_tool:-}" ] || ! pkg-config --exists libmemcached 2>/dev/null; then
    echo "install-deps: this is not a Debian-like system. Install by hand:" >&2
    echo "  libmemcached 1.0.18+ with libmemcachedutil (e.g. brew install libmemcached;" >&2
    echo "  dnf install libmemcached-awesome-devel), memcached, twemproxy (nutcracker)," >&2
    echo "  pkg-config and a C compiler." >&2
    exit 1
  fi
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo="sudo"
    else
      echo "install-deps: missing ${missing[*]}; run as root: apt-get install ${missing[*]}" >&2
      exit 1
    fi
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  echo "install-deps: no Go toolchain found: install Go 1.22 or newer (https://go.dev/doc/install)" >&2
  exit 1
fi
if ! out=$(pkg-config --print-errors --exists libmemcached 2>&1); then
  echo "install-deps: pkg-config cannot use libmemcached:" >&2
  echo "$out" >&2
  exit 1
fi
