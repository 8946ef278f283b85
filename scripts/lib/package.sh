# shellcheck shell=bash
# What a package is called and where its parts come from, for scripts/package and
# scripts/check-package. Sourced (after arm.sh), not run.

PACKAGING=packaging/debian

# The version: the top entry of packaging/debian/changelog, which must match Cargo.toml's (the
# changelog is where a packaged release is described, so it is where the version is read).
package_version() {
  local deb cargo
  deb=$(sed -n '1s/^sfpair (\([^)]*\)).*/\1/p' "$PACKAGING/changelog")
  cargo=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
  if [ "$deb" != "$cargo" ]; then
    echo "error: $PACKAGING/changelog's top entry is '$deb' but Cargo.toml says '$cargo':" \
      "add a changelog entry for $cargo (same format, newest first)" >&2
    return 1
  fi
  echo "$deb"
}

# The maintainer and date of the top changelog entry (its trailer line).
package_maintainer() { sed -n 's/^ -- \(.*>\)  .*$/\1/p' "$PACKAGING/changelog" | head -n 1; }
package_date() { sed -n 's/^ -- .*>  \(.*\)$/\1/p' "$PACKAGING/changelog" | head -n 1; }

# deb_arch TARGET: Debian's name for the target's architecture; fails for targets that are not
# packaged as a .deb (the musl builds become .tar.gz).
deb_arch() {
  case $1 in
    armv7-unknown-linux-gnueabihf) echo armhf ;;
    aarch64-unknown-linux-gnu) echo arm64 ;;
    # Not a board: scripts/check-package installs this one into a scratch Debian root here.
    x86_64-unknown-linux-gnu) echo amd64 ;;
    *) return 1 ;;
  esac
}

# The file names scripts/package writes into $DIST.
deb_file() { echo "sfpair_$(package_version)_$(deb_arch "$1").deb"; }
tar_file() { echo "sfpair-$(package_version)-$1.tar.gz"; }
