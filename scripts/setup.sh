#!/usr/bin/env bash
# Installs every build and test dependency from Debian's packages.
# libbpf >= 1.4 and bpftool come from bookworm-backports (Debian 12's libbpf 1.1
# knows nothing of arenas); that suite is added with the mirror URI the
# machine's apt sources already name, never a hard-coded host.
# Idempotent: when everything is present it prints nothing and touches nothing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  clang-19 llvm-19 clang-format
  libelf-dev zlib1g-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev libexpected-dev
  libgtest-dev libgmock-dev libbenchmark-dev librapidcheck-dev
  libmimalloc-dev libjemalloc-dev
  qemu-system-x86 busybox-static cpio zstd
  rt-tests
)
backports=(libbpf-dev bpftool)
backports_list=/etc/apt/sources.list.d/scxkit-bookworm-backports.sources

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# libbpf-dev from bookworm itself is 1.1: only 1.4 or newer counts.
libbpf_ok() {
  local v
  v=$(dpkg-query -W -f='${Version}' libbpf-dev 2>/dev/null) || return 1
  dpkg --compare-versions "$v" ge 1:1.4
}

missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
missing_bp=()
libbpf_ok || missing_bp+=(libbpf-dev)
installed bpftool || missing_bp+=(bpftool)
[ ${#missing[@]} -eq 0 ] && [ ${#missing_bp[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing packages: ${missing[*]} ${missing_bp[*]}; run this script as root (or: sudo $0)" >&2
  exit 1
fi

# The first URI that serves the bookworm suite, from one-line or deb822 sources.
mirror_uri() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { if ($(i+1) == "bookworm") { print $i; exit } break } }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
         { uri = ""; suite = 0
           for (i = 1; i <= NF; i++) {
             if ($i ~ /^URIs:/) { split($i, u, " "); uri = u[2] }
             if ($i ~ /^Suites:/ && $i ~ /(^|[ \t])bookworm([ \t]|$)/) suite = 1
           }
           if (uri != "" && suite) { print uri; exit } }' "$f"
  done
}

export DEBIAN_FRONTEND=noninteractive
if [ ${#missing_bp[@]} -gt 0 ] && [ ! -f "$backports_list" ]; then
  uri=$(mirror_uri | head -n 1)
  if [ -z "$uri" ]; then
    echo "setup: no apt source names a bookworm mirror; add one, then run this again" >&2
    exit 1
  fi
  echo "setup: adding bookworm-backports from $uri"
  cat >"$backports_list" <<EOF
# Added by scxkit's scripts/setup.sh for libbpf >= 1.4 and bpftool.
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi

echo "setup: installing ${missing[*]} ${missing_bp[*]}"
apt-get update -qq
[ ${#missing[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[ ${#missing_bp[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends -t bookworm-backports "${missing_bp[@]}" >/dev/null
libbpf_ok || { echo "setup: libbpf-dev >= 1.4 did not install from bookworm-backports" >&2; exit 1; }
