#!/usr/bin/env bash
# make compat: builds the package and runs its tests against the other
# libmemcached releases users have, besides the system's (make test):
#
#   1.0.18  macOS Homebrew, Ubuntu 22.04, Debian 11: Debian 11's own binary
#           packages, fetched with apt-get download through a private apt
#           configuration that adds the bullseye suite of the Debian mirror
#           this machine's apt already uses, unpacked with dpkg -x.
#   1.1.0   RHEL 9 / Rocky 9 (libmemcached-awesome): the prebuilt tree in
#           ../shared/compat/libmemcached-1.1.0-bookworm-amd64.tar.gz, used
#           when that file exists (COMPAT_110_TARBALL overrides the path) and
#           reported as skipped, with the reason, when it does not.
#
# Each version gets its own GOCACHE (cgo output built against other headers
# is otherwise reused silently), and TestLoadedLibrary proves that the
# library loaded at run time is the one asked for. The tests that compare
# with Debian's pylibmc run twice: with pylibmc on the system's library,
# then on the release under test. Then a test binary built
# against one release runs with the other loaded, and must be refused
# (TestLibraryMismatch), in both directions.
#
#   scripts/compat.sh             all of the above
#   scripts/compat.sh 1.0.18      one version (1.0.18 or 1.1.0)
#
# The libraries are unpacked under .cache/compat/ (COMPAT_CACHE overrides
# it) and reused by later runs.
set -euo pipefail

cd "$(dirname "$0")/.."
top=$PWD
cache=${COMPAT_CACHE:-$top/.cache/compat}
tarball_110=${COMPAT_110_TARBALL:-$top/../shared/compat/libmemcached-1.1.0-bookworm-amd64.tar.gz}
go=${GO:-go}
gotest_flags=${GOTEST_FLAGS:--race -count=1 -timeout 20m}
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(1.0.18 1.1.0)

say() { echo "compat: $*" >&2; }

# The Debian mirror this machine's apt already uses (deb822 sources first,
# then sources.list); never a host name of our own.
debian_mirror() {
  local m=""
  m=$(grep -hoE '^URIs:[[:space:]]*\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
  [ -n "$m" ] || m=$(grep -hoE '^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?\S+' /etc/apt/sources.list 2>/dev/null | awk '{print $NF}' | grep -v security | head -1 || true)
  echo "$m"
}

# prepare_1_0_18 unpacks Debian 11's libmemcached 1.0.18 under $cache/1.0.18
# and prints its root; on failure it says why and returns 1.
prepare_1_0_18() {
  local dir=$cache/1.0.18 root=$cache/1.0.18/root
  local pcdir=$root/usr/lib/x86_64-linux-gnu/pkgconfig
  if [ -f "$dir/.complete" ]; then
    echo "$root"
    return 0
  fi
  command -v apt-get >/dev/null && command -v dpkg >/dev/null || {
    say "1.0.18 needs apt-get and dpkg (Debian or Ubuntu) to fetch Debian 11's packages"
    return 1
  }
  [ "$(dpkg --print-architecture)" = amd64 ] || {
    say "1.0.18: the packages fetched are amd64; this machine is $(dpkg --print-architecture)"
    return 1
  }
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -f "$keyring" ] || { say "1.0.18: $keyring is missing (apt-get install debian-archive-keyring)"; return 1; }
  local mirror
  mirror=$(debian_mirror)
  [ -n "$mirror" ] || { say "1.0.18: cannot find this machine's Debian mirror in /etc/apt"; return 1; }

  rm -rf "$dir"
  mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/apt/parts" "$dir/debs" "$root"
  echo "deb [signed-by=$keyring] $mirror bullseye main" >"$dir/apt/sources.list"
  : >"$dir/apt/status"
  local apt=(apt-get -q
    -o Dir::Etc::SourceList="$dir/apt/sources.list" -o Dir::Etc::SourceParts="$dir/apt/parts"
    -o Dir::State::Lists="$dir/apt/lists" -o Dir::State::status="$dir/apt/status"
    -o Dir::Cache="$dir/apt/cache" -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts="$dir/apt/parts"
    -o APT::Architecture=amd64 -o APT::Sandbox::User=root -o Acquire::Languages=none
    -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
    -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
    -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false)
  say "fetching libmemcached 1.0.18 from $mirror bullseye"
  "${apt[@]}" update >"$dir/apt/update.log" 2>&1 || { tail -5 "$dir/apt/update.log" >&2; say "1.0.18: apt-get update of bullseye failed"; return 1; }
  local v=1.0.18-4.2
  (cd "$dir/debs" && "${apt[@]}" download libmemcached-dev=$v libmemcached11=$v libmemcachedutil2=$v \
    libhashkit2=$v libhashkit-dev=$v) >"$dir/apt/download.log" 2>&1 \
    || { tail -5 "$dir/apt/download.log" >&2; say "1.0.18: apt-get download failed"; return 1; }
  local deb
  for deb in "$dir"/debs/*.deb; do
    dpkg -x "$deb" "$root"
  done
  # The .pc file says prefix=/usr: point it at the unpacked tree, or the
  # compiler would read the system's 1.1 headers.
  sed -i "s|^prefix=.*|prefix=$root/usr|" "$pcdir/libmemcached.pc"
  [ "$(PKG_CONFIG_PATH=$pcdir pkg-config --modversion libmemcached)" = 1.0.18 ] || { say "1.0.18: the unpacked libmemcached.pc is not 1.0.18"; return 1; }
  touch "$dir/.complete"
  echo "$root"
}

# prepare_1_1_0 unpacks the 1.1.0 tarball under $cache/1.1.0 and prints its
# root; without the tarball it says so and returns 2 (a skip).
prepare_1_1_0() {
  local dir=$cache/1.1.0
  if [ ! -f "$tarball_110" ]; then
    say "1.1.0: SKIPPED: $tarball_110 does not exist (it holds libmemcached 1.1.0 built for this machine kind; see ../shared/compat/README.md)"
    return 2
  fi
  local stamp
  stamp=$(cksum <"$tarball_110")
  if [ ! -f "$dir/.complete" ] || [ "$(cat "$dir/.complete")" != "$stamp" ]; then
    rm -rf "$dir"
    mkdir -p "$dir/root"
    tar -xzf "$tarball_110" -C "$dir/root"
    echo "$stamp" >"$dir/.complete"
  fi
  echo "$dir/root"
}

# pc_dir and lib_dir VERSION ROOT print where an unpacked release keeps its
# libmemcached.pc and its libraries.
pc_dir() {
  case $1 in
  1.0.18) echo "$2/usr/lib/x86_64-linux-gnu/pkgconfig" ;;
  1.1.0) echo "$2/lib/pkgconfig" ;;
  esac
}
lib_dir() {
  case $1 in
  1.0.18) echo "$2/usr/lib/x86_64-linux-gnu" ;;
  1.1.0) echo "$2/lib" ;;
  esac
}

scratch=$(mktemp -d)
trap 'chmod -R u+w "$scratch" 2>/dev/null; rm -rf "$scratch"' EXIT

system_version=$(pkg-config --modversion libmemcached)
failed=()
skipped=()
tested=()
for v in "${versions[@]}"; do
  rc=0
  case $v in
  1.0.18) root=$(prepare_1_0_18) || rc=$? ;;
  1.1.0) root=$(prepare_1_1_0) || rc=$? ;;
  *) say "unknown version $v (1.0.18 or 1.1.0)"; exit 2 ;;
  esac
  if [ $rc -eq 2 ]; then
    skipped+=("$v")
    continue
  elif [ $rc -ne 0 ]; then
    failed+=("$v (could not get the library)")
    continue
  fi
  pcdir=$(pc_dir "$v" "$root")
  libdir=$(lib_dir "$v" "$root")
  gocache=$scratch/gocache-$v
  mkdir -p "$gocache"
  say "=== libmemcached $v: go vet and go test of the package, pylibmc, cmd/errgen and cmd/memctl (GOCACHE=$gocache)"
  if ! (
    export PKG_CONFIG_PATH=$pcdir LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} GOCACHE=$gocache
    export LIBMEMCACHED_EXPECT_VERSION=$v
    set -x
    $go vet . ./pylibmc ./cmd/errgen
    # shellcheck disable=SC2086
    $go test $gotest_flags . ./pylibmc ./cmd/errgen
    $go test -count=1 -run '^TestLoadedLibrary$' -v . | grep FIGURE
    # The tests that compare with pylibmc ran it on the system's
    # libmemcached (a Python fleet elsewhere); again with pylibmc on this
    # release too, as on a host that ships it (Ubuntu 22.04, RHEL 9).
    LIBMEMCACHED_PYLIBMC_LIBRARY_PATH=$libdir $go test -count=1 -run 'Pylibmc|Interop|Parity|Migration' . ./pylibmc
    cd cmd/memctl
    $go vet -tags "$(command -v g++ >/dev/null 2>&1 || echo nolibmc)" ./...
    # shellcheck disable=SC2086
    $go test -tags "$(command -v g++ >/dev/null 2>&1 || echo nolibmc)" $gotest_flags ./...
  ); then
    failed+=("$v")
    continue
  fi

  # A program built against one release and run with the other loaded
  # (they share the soname) must be refused, in both directions.
  if [ "${v%.*}" != "${system_version%.*}" ]; then
    say "=== headers $system_version, libmemcached $v loaded: must be refused"
    if ! (
      set -x
      $go test -c -o "$scratch/system.test" .
      LD_LIBRARY_PATH=$libdir LIBMEMCACHED_EXPECT_MISMATCH=1 "$scratch/system.test" -test.run '^TestLibraryMismatch$' -test.v -test.count=1
    ); then
      failed+=("$v (mismatch with the system's headers not refused)")
      continue
    fi
    say "=== headers $v, the system's libmemcached $system_version loaded: must be refused"
    if ! (
      set -x
      PKG_CONFIG_PATH=$pcdir GOCACHE=$gocache $go test -c -o "$scratch/$v.test" .
      LIBMEMCACHED_EXPECT_MISMATCH=1 "$scratch/$v.test" -test.run '^TestLibraryMismatch$' -test.v -test.count=1
    ); then
      failed+=("$v (mismatch with the system's library not refused)")
      continue
    fi
  fi
  tested+=("$v")
done

say "tested against: ${tested[*]:-none} (and the system's $system_version in make test)"
[ ${#skipped[@]} -eq 0 ] || say "skipped: ${skipped[*]} (reason above)"
if [ ${#failed[@]} -gt 0 ]; then
  say "FAILED: ${failed[*]}"
  exit 1
fi
