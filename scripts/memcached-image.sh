#!/usr/bin/env bash
# Collects the root file system of a memcached container image from this
# host, for machines whose Docker engine has no registry to pull from: the
# host's memcached binary, every shared library `ldd` lists for it (the
# dynamic loader included, at the paths ldd gives), Cyrus SASL's PLAIN and
# sasldb plugins with their own libraries (for `memcached -S`), coreutils'
# timeout (the entry point runs memcached under it, so that a container a
# crashed test run left behind stops by itself), iptables (for the partition
# test, run inside the container), and /etc/passwd and
# /etc/group lines for root (memcached running as root needs `-u root`,
# which looks the user up).
#
#   scripts/memcached-image.sh --rootfs DIR    collect into DIR (made empty)
#   scripts/memcached-image.sh --build TAG     collect and `docker build` TAG
#                                              (FROM scratch, no base image)
#
# The integration tests (integration_test/) run it with --rootfs and build
# the image themselves through the Docker API, tagged with a hash of the
# collected files, so an unchanged host reuses the image.
set -euo pipefail

usage() {
  echo "usage: $0 --rootfs DIR | --build TAG" >&2
  exit 2
}

[ $# -eq 2 ] || usage
mode=$1
arg=$2

memcached_bin=$(command -v memcached 2>/dev/null || true)
for p in /usr/bin/memcached /usr/local/bin/memcached /usr/sbin/memcached; do
  [ -n "$memcached_bin" ] && break
  [ -x "$p" ] && memcached_bin=$p
done
if [ -z "$memcached_bin" ]; then
  echo "memcached-image: memcached is not installed (run scripts/install-deps.sh)" >&2
  exit 1
fi
memcached_bin=$(readlink -f "$memcached_bin")

case $mode in
--rootfs)
  rootfs=$arg
  ;;
--build)
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  rootfs=$work/rootfs
  ;;
*)
  usage
  ;;
esac

rm -rf "$rootfs"
mkdir -p "$rootfs"

# copy_file SRC [DEST]: copies SRC (symlinks followed) to DEST (default:
# the same path) under the root file system.
copy_file() {
  local src=$1 dest=${2:-$1}
  mkdir -p "$rootfs$(dirname "$dest")"
  cp -L "$src" "$rootfs$dest"
}

# copy_libs FILE: copies every library ldd lists for FILE, and the loader.
copy_libs() {
  local line lib
  while read -r line; do
    lib=""
    case $line in
    *"=> not found"*)
      echo "memcached-image: $1 needs a library that is missing: $line" >&2
      exit 1
      ;;
    *"=> /"*) lib=${line#*=> } ;;
    /*) lib=$line ;;
    esac
    lib=${lib%% (*}
    if [ -n "$lib" ] && [ ! -e "$rootfs$lib" ]; then
      copy_file "$lib"
    fi
  done < <(ldd "$1")
}

copy_file "$memcached_bin" /usr/bin/memcached
copy_libs "$memcached_bin"

timeout_bin=$(command -v timeout)
copy_file "$timeout_bin" /usr/bin/timeout
copy_libs "$timeout_bin"

# SASL: memcached -S loads its mechanisms from libsasl2's plugin folder.
# PLAIN (libsasl2-modules) and the sasldb password store
# (libsasl2-modules-db) are all the tests use. Only the *.so names are
# copied: libsasl2 loads each file ending in .so once.
sasl_dir=""
for d in /usr/lib/*/sasl2 /usr/lib/sasl2; do
  if [ -e "$d/libplain.so" ]; then
    sasl_dir=$d
    break
  fi
done
if [ -n "$sasl_dir" ]; then
  for plugin in libplain.so libsasldb.so; do
    if [ -e "$sasl_dir/$plugin" ]; then
      copy_file "$sasl_dir/$plugin"
      copy_libs "$sasl_dir/$plugin"
    else
      echo "memcached-image: warning: $sasl_dir/$plugin is missing (apt-get install libsasl2-modules-db): SASL will not work" >&2
    fi
  done
else
  echo "memcached-image: warning: no SASL plugins found (apt-get install libsasl2-modules libsasl2-modules-db): SASL will not work" >&2
fi

# iptables, for the network-partition test: it runs iptables inside the
# container (created with CAP_NET_ADMIN) through the Docker engine, so the
# test needs no privileges on the host itself. The multi-call binary picks
# its personality from its name, so it is copied as /usr/sbin/iptables.
iptables_bin=$(command -v iptables 2>/dev/null || true)
[ -n "$iptables_bin" ] || { [ -x /usr/sbin/iptables ] && iptables_bin=/usr/sbin/iptables; }
if [ -n "$iptables_bin" ]; then
  copy_file "$(readlink -f "$iptables_bin")" /usr/sbin/iptables
  copy_libs "$(readlink -f "$iptables_bin")"
  # "-j DROP" is the standard target, an extension of its own.
  for x in /usr/lib/*/xtables/libxt_standard.so /usr/lib/xtables/libxt_standard.so; do
    if [ -e "$x" ]; then
      copy_file "$x"
      copy_libs "$x"
    fi
  done
  mkdir -p "$rootfs/run"
else
  echo "memcached-image: warning: iptables is not installed (apt-get install iptables): the partition test will fail" >&2
fi

mkdir -p "$rootfs/etc/sasl2" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"
echo "root:x:0:0:root:/root:/usr/sbin/nologin" >"$rootfs/etc/passwd"
echo "root:x:0:" >"$rootfs/etc/group"

if [ "$mode" = --build ]; then
  cat >"$work/Dockerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
ENV SASL_CONF_PATH=/etc/sasl2
EXPOSE 11211
ENTRYPOINT ["/usr/bin/timeout", "-s", "KILL", "1800", "/usr/bin/memcached", "-u", "root"]
EOF
  DOCKER_BUILDKIT=0 docker build -q -t "$arg" "$work" >/dev/null
  echo "$arg"
fi
