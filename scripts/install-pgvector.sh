#!/usr/bin/env bash
# Installs pgvector for the local PostgreSQL server (SPEC §2).
#
# 1. Already installed (vector.control present for this server)? Done, in milliseconds.
# 2. A distribution package postgresql-<major>-pgvector? Install it.
# 3. Otherwise build the Debian source package of pgvector (from the next Debian release, through
#    a deb-src entry) against postgresql-server-dev-<major>, and install the result.
#
# Idempotent; needs root (apt-get) for steps 2 and 3. PG_MAJOR picks the server when several are installed.
set -euo pipefail

log() { printf 'install-pgvector: %s\n' "$*" >&2; }

major_from_dirs() {
  ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1
}

MAJOR="${PG_MAJOR:-$(major_from_dirs)}"
if [[ -z "$MAJOR" ]]; then
  log "no PostgreSQL server found under /usr/lib/postgresql; install postgresql first"
  exit 1
fi
SHAREDIR="/usr/share/postgresql/$MAJOR"
if [[ -f "$SHAREDIR/extension/vector.control" ]]; then
  log "pgvector already installed for PostgreSQL $MAJOR ($(grep default_version "$SHAREDIR/extension/vector.control" | tr -d "' "))"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

apt_updated=0
apt_update() {
  if [[ $apt_updated -eq 0 ]]; then $SUDO apt-get update -qq; apt_updated=1; fi
}

apt_update
if apt-cache show "postgresql-$MAJOR-pgvector" >/dev/null 2>&1; then
  log "installing postgresql-$MAJOR-pgvector from the distribution"
  $SUDO apt-get install -y -qq "postgresql-$MAJOR-pgvector" >/dev/null
  exit 0
fi

log "no postgresql-$MAJOR-pgvector package; building pgvector from the Debian source package"
$SUDO apt-get install -y -qq "postgresql-server-dev-$MAJOR" build-essential dpkg-dev >/dev/null

# A deb-src entry for a Debian release that packages pgvector (the next release after bookworm).
SRC_LIST=/etc/apt/sources.list.d/omni-ingest-pgvector-src.list
SRC_SUITE="${PGVECTOR_SRC_SUITE:-trixie}"
if ! apt-cache showsrc pgvector 2>/dev/null | grep -q '^Package: pgvector'; then
  echo "deb-src http://deb.debian.org/debian $SRC_SUITE main" | $SUDO tee "$SRC_LIST" >/dev/null
  apt_updated=0
  apt_update
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"
cd "$WORK"
apt-get source -qq --download-only pgvector >/dev/null
dpkg-source -x --no-check ./pgvector_*.dsc src >/dev/null
cd src
PG_CONFIG_BIN="/usr/lib/postgresql/$MAJOR/bin/pg_config"
make -s PG_CONFIG="$PG_CONFIG_BIN" OPTFLAGS="" -j"$(nproc)" >/dev/null
$SUDO make -s PG_CONFIG="$PG_CONFIG_BIN" install >/dev/null
log "pgvector $(grep default_version vector.control | tr -d "' " | cut -d= -f2) built and installed for PostgreSQL $MAJOR"
