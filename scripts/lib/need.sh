# Shared by the scripts: install what a step needs, once, on a fresh machine.
# Sourced, not run. Debian packages with apt-get (sudo when not root), rustup targets and
# components, Python tools with pip. Every function is a no-op when the thing is present.

_sudo() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

_apt_updated=""

# need_apt COMMAND PACKAGE: install PACKAGE when COMMAND is missing.
need_apt() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null 2>&1 && return 0
  echo "== installing $pkg (for $cmd)" >&2
  if [ -z "$_apt_updated" ]; then
    _sudo apt-get update -qq >&2
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive _sudo apt-get install -y -qq --no-install-recommends "$pkg" >&2
  command -v "$cmd" >/dev/null 2>&1 || { echo "error: $pkg did not provide $cmd" >&2; return 1; }
}

# need_target TRIPLE [TOOLCHAIN]: a rustup target.
need_target() {
  local triple=$1 toolchain=${2:-}
  if ! rustup ${toolchain:++$toolchain} target list --installed | grep -qx "$triple"; then
    echo "== adding rustup target $triple" >&2
    rustup ${toolchain:++$toolchain} target add "$triple" >&2
  fi
}

# need_component NAME [TOOLCHAIN]: a rustup component (clippy, rustfmt, rust-src).
need_component() {
  local name=$1 toolchain=${2:-}
  if ! rustup ${toolchain:++$toolchain} component list --installed | grep -q "^$name"; then
    echo "== adding rustup component $name" >&2
    rustup ${toolchain:++$toolchain} component add "$name" >&2
  fi
}

need_cargo() {
  command -v cargo >/dev/null 2>&1 && return 0
  echo "error: cargo is missing: install Rust with rustup (https://rustup.rs) first" >&2
  return 1
}

# need_toolchain NAME: a rustup toolchain (nightly, for cargo fuzz and -Zbuild-std).
need_toolchain() {
  local name=$1
  rustup toolchain list | grep -q "^$name" && return 0
  echo "== installing the $name toolchain" >&2
  rustup toolchain install "$name" --profile minimal >&2 || {
    echo "error: the $name toolchain is missing and could not be installed" >&2
    return 1
  }
}
