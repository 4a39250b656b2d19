#!/usr/bin/env bash
# Keeps vendor/patches/*.diff honest: each vendored crate must be exactly its crates.io release
# with our patches applied, so the patches are the whole story of what we changed.
#
#   vendor/check-patches.sh           check (run by run-tests.sh; seconds)
#   vendor/check-patches.sh --write   rewrite each patch from the vendored copy, keeping its header
#                                     and its list of files (a file newly changed must first be
#                                     added to a patch by hand: the check names it)
#
# The pristine release comes from cargo's registry cache; with the crates patched in through
# `[patch.crates-io]` a build never downloads them, so when the cache lacks one, `cargo fetch` of a
# throwaway manifest brings it. Its sha256 is checked against the one recorded below, so a
# different or tampered archive cannot pass as upstream.
set -euo pipefail
cd "$(dirname "$0")"

# crate, version, sha256 of the .crate archive (Cargo.lock of a project using the release has it).
CRATES=(
  "rtc 0.21.1 4e2ca201de5ccc83aa3c08d49a2f08d7ed0aeeb2052fb1ccc517a8b77a6927ce"
  "rtc-ice 0.21.1 099984f1be120b2e5692f232f8cbb82e53f6b4261c5c2eeda5be6223ba1adaa9"
  "sqlx-sqlite 0.9.0 488e99c397a62007e4229aec669a179816339afc6d2620ca6fa420dbee2e982c"
)
# What we copy from a release (the rest, examples, integration tests, lock file, CI files, stays
# out); patches then change these. rtc-ice's release ships no licence files: ours are rtc's.
COPIED=(src Cargo.toml README.md LICENSE-APACHE LICENSE-MIT)
declare -A LICENCES_FROM=([rtc-ice]=rtc)

MODE=check
case "${1:-}" in
  "") ;;
  --write) MODE=write ;;
  *) echo "usage: $0 [--write]" >&2; exit 2 ;;
esac

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cache_dir() { echo "${CARGO_HOME:-$HOME/.cargo}/registry/cache"; }

# Path of the cached .crate archive for "$1-$2", fetching it once if absent.
crate_archive() {
  local name=$1 version=$2 found
  found=$(find "$(cache_dir)" -maxdepth 2 -name "$name-$version.crate" 2>/dev/null | head -n1)
  if [ -z "$found" ]; then
    fetch_releases >&2
    found=$(find "$(cache_dir)" -maxdepth 2 -name "$name-$version.crate" | head -n1)
  fi
  [ -n "$found" ] || { echo "error: $name $version not in the cargo cache after cargo fetch" >&2; exit 1; }
  echo "$found"
}

fetched=""
fetch_releases() {
  [ -z "$fetched" ] || return 0
  fetched=1
  local dir="$WORK/fetch"
  mkdir -p "$dir/src"
  : >"$dir/src/lib.rs"
  {
    printf '[package]\nname = "hoinghi-vendor-fetch"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\n'
    local entry name version _
    for entry in "${CRATES[@]}"; do
      read -r name version _ <<<"$entry"
      printf '%s = { version = "=%s", default-features = false }\n' "$name" "$version"
    done
  } >"$dir/Cargo.toml"
  echo "fetching the upstream releases (cargo fetch of a throwaway manifest)"
  cargo fetch --quiet --manifest-path "$dir/Cargo.toml" --target "$(rustc -vV | sed -n 's/^host: //p')"
}

# Unpacks release "$1-$2" (checked against sha256 $3) into $WORK/upstream/$1, holding only COPIED.
unpack() {
  local name=$1 version=$2 sha=$3 archive got dest="$WORK/upstream/$1"
  archive=$(crate_archive "$name" "$version")
  got=$(sha256sum "$archive" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    echo "error: $archive has sha256 $got, not the $name $version release's $sha" >&2
    exit 1
  fi
  mkdir -p "$WORK/unpacked" "$dest"
  tar -xzf "$archive" -C "$WORK/unpacked"
  local item
  for item in "${COPIED[@]}"; do
    if [ -e "$WORK/unpacked/$name-$version/$item" ]; then
      cp -R "$WORK/unpacked/$name-$version/$item" "$dest/"
    fi
  done
}

# Applies patch $2 in directory $1, exactly (no fuzz): GNU patch, or git where a minimal machine
# lacks patch (the work directory is outside any repository, so git works as a plain patch tool).
apply_patch() {
  if command -v patch >/dev/null 2>&1; then
    patch --quiet --batch --forward --fuzz=0 --no-backup-if-mismatch -p1 -d "$1" <"$2"
  else
    (cd "$1" && GIT_CEILING_DIRECTORIES="$WORK" git apply -p1 "$OLDPWD/$2")
  fi
}

# Files a patch touches, from its "+++ b/PATH" lines.
patch_files() { sed -n 's#^+++ b/\([^\t]*\).*#\1#p' "$1"; }

# Rewrites patch $2 of crate $1 from upstream ($WORK/upstream/$1) to vendor/$1.
write_patch() {
  local name=$1 patch=$2 file
  {
    sed '/^diff /,$d' "$patch"
    for file in $(patch_files "$patch"); do
      echo "diff -uN a/$file b/$file"
      (cd "$WORK" && diff -uN --label "a/$file" --label "b/$file" "a/$file" "b/$file") || true
    done
  } >"$patch.new"
  mv "$patch.new" "$patch"
  echo "wrote $patch"
}

status=0
for entry in "${CRATES[@]}"; do
  read -r name version sha <<<"$entry"
  unpack "$name" "$version" "$sha"
  if [ -n "${LICENCES_FROM[$name]:-}" ]; then
    from=${LICENCES_FROM[$name]}
    cp "$WORK/unpacked/$from-$version"/LICENSE-* "$WORK/upstream/$name/"
  fi
  patches=(patches/"$name-$version"-*.diff)
  [ -e "${patches[0]}" ] || { echo "error: no patches/$name-$version-*.diff" >&2; exit 1; }

  if [ "$MODE" = write ]; then
    rm -rf "$WORK/a" "$WORK/b"
    cp -R "$WORK/upstream/$name" "$WORK/a"
    cp -R "$name" "$WORK/b"
    for patch in "${patches[@]}"; do write_patch "$name" "$patch"; done
  fi

  expected="$WORK/expected/$name"
  mkdir -p "$WORK/expected"
  cp -R "$WORK/upstream/$name" "$expected"
  for patch in "${patches[@]}"; do
    if ! apply_patch "$expected" "$patch"; then
      echo "FAIL: $patch does not apply to $name $version" >&2
      status=1
      continue 2
    fi
  done
  if diff -ruN "$expected" "$name" >"$WORK/drift-$name.diff"; then
    echo "ok: vendor/$name = $name $version + ${patches[*]}"
  else
    echo "FAIL: vendor/$name differs from $name $version + its patches; unexplained changes:" >&2
    sed "s#$expected#upstream+patches#g" "$WORK/drift-$name.diff" >&2
    echo "(a change meant to stay goes into a patch: add the file to one, then $0 --write)" >&2
    status=1
  fi
done
exit "$status"
