#!/usr/bin/env bash
# A Debian bookworm base image made from Debian's own packages, for machines that cannot reach Docker Hub.
#
#   scripts/build_base_image.sh [TAG]        (root; needs debootstrap and a running docker daemon)
#   docker build --build-arg BASE=TAG .      (the Dockerfile's default BASE stays python:3.11-slim)
#
# debootstrap fetches bookworm's minimal system (plus Python 3.11, venv and CA certificates) from
# deb.debian.org, the rootfs is tarred and `docker import`ed as TAG. The tarball is kept under
# NEXUS_BASE_CACHE (default ~/.cache/nexus-assets/base), keyed by this script's own hash, so a rerun
# only imports it (seconds) instead of bootstrapping again (minutes): the cache holds nothing the
# script does not fully determine except the day's Debian point release.
set -euo pipefail

TAG="${1:-nexus-base:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PACKAGES="python3,python3-venv,python-is-python3,ca-certificates"
CACHE="${NEXUS_BASE_CACHE:-$HOME/.cache/nexus-assets/base}"
KEY="$(sha256sum "$0" | cut -c1-16)"
TARBALL="$CACHE/bookworm-$KEY.tar"

if ! command -v docker >/dev/null 2>&1; then
  echo "build_base_image: no docker CLI" >&2
  exit 2
fi
mkdir -p "$CACHE"
if [ ! -s "$TARBALL" ]; then
  command -v debootstrap >/dev/null 2>&1 || {
    echo "build_base_image: debootstrap is missing (apt-get install debootstrap)" >&2
    exit 2
  }
  root="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
  trap 'rm -rf "$root"' EXIT
  started=$(date +%s)
  debootstrap --variant=minbase --include="$PACKAGES" bookworm "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 || {
    echo "build_base_image: debootstrap failed, see $CACHE/debootstrap.log" >&2
    tail -20 "$CACHE/debootstrap.log" >&2
    exit 1
  }
  # apt's lists and the package cache are not part of the image; apt-get update restores them.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" --numeric-owner -cf "$TARBALL.part" .
  mv "$TARBALL.part" "$TARBALL"
  echo "build_base_image: bootstrapped bookworm in $(( $(date +%s) - started )) s -> $TARBALL"
fi
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  "$TARBALL" "$TAG" >/dev/null
echo "build_base_image: $TAG imported from $TARBALL"
