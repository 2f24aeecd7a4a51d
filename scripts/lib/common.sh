# Shared helpers for the scripts: locating the repository and installing what is missing.
# Sourced, not run.

DEDUPFS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export DEDUPFS_ROOT

die() {
  echo "dedupfs: $*" >&2
  exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# need_packages CHECK:PACKAGE ... — CHECK is a command name or an absolute file path.
# As root, missing Debian packages are installed with apt-get; otherwise we say what to install.
need_packages() {
  local missing=() pair check pkg
  for pair in "$@"; do
    check="${pair%%:*}"
    pkg="${pair#*:}"
    if [[ "$check" == /* ]]; then
      [ -e "$check" ] || missing+=("$pkg")
    else
      command -v "$check" >/dev/null 2>&1 || missing+=("$pkg")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if is_root && command -v apt-get >/dev/null 2>&1; then
    echo "dedupfs: installing ${missing[*]}" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
        die "could not install ${missing[*]} with apt-get"
    fi
  else
    die "missing ${missing[*]}: install with: sudo apt-get install ${missing[*]}"
  fi
}

need_dotnet() {
  command -v dotnet >/dev/null 2>&1 || die "the .NET SDK (10.0) is required: https://learn.microsoft.com/dotnet/core/install/linux-debian"
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
}

# The runtime needs: fuse3 (fusermount3, /dev/fuse helpers) and the system LMDB
# (LightningDB's bundled liblmdb.so needs a newer glibc than Debian 12 has).
need_runtime() {
  need_packages fusermount3:fuse3 /usr/lib/x86_64-linux-gnu/liblmdb.so.0:liblmdb0
  [ -e /dev/fuse ] || die "/dev/fuse is missing: load the fuse module (modprobe fuse)"
}

# Build tools for native/ and the tests' peers.
need_build_tools() {
  need_packages make:make gcc:gcc pkg-config:pkg-config /usr/include/fuse3/fuse_lowlevel.h:libfuse3-dev \
    /usr/lib/x86_64-linux-gnu/liblmdb.so:liblmdb-dev
}
