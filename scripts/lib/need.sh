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

# Puts the directories pip installs commands into on PATH (pyenv, venv, system or --user).
_pip_paths() {
  command -v python3 >/dev/null 2>&1 || return 0
  local dir
  for dir in "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null)" \
    "$(python3 -m site --user-base 2>/dev/null)/bin"; do
    case ":$PATH:" in *":$dir:"*) ;; *) [ -d "$dir" ] && PATH="$dir:$PATH" ;; esac
  done
  export PATH
}

# need_pip COMMAND PACKAGE...: install the PyPI PACKAGEs (pin them: name==version) when
# COMMAND is missing. Falls back to --user where the system Python refuses (PEP 668).
need_pip() {
  local cmd=$1
  shift
  _pip_paths
  command -v "$cmd" >/dev/null 2>&1 && return 0
  need_apt python3 python3
  python3 -m pip --version >/dev/null 2>&1 || need_apt pip3 python3-pip
  echo "== installing $* with pip (for $cmd)" >&2
  python3 -m pip install --quiet --disable-pip-version-check "$@" >&2 ||
    python3 -m pip install --quiet --disable-pip-version-check --user --break-system-packages "$@" >&2
  _pip_paths
  hash -r
  command -v "$cmd" >/dev/null 2>&1 || { echo "error: pip installed $* but $cmd is not on PATH" >&2; return 1; }
}

# need_toolchain NAME: a rustup toolchain (e.g. nightly), minimal profile.
need_toolchain() {
  local name=$1
  if ! rustup toolchain list | grep -q "^$name"; then
    echo "== installing rust toolchain $name" >&2
    rustup toolchain install "$name" --profile minimal >&2 || {
      echo "error: the $name toolchain is missing and could not be installed" >&2
      return 1
    }
  fi
}

# need_file PATH PACKAGE: install PACKAGE when the file PATH is missing (a cross sysroot's
# dynamic loader, say, which no command stands for).
need_file() {
  local path=$1 pkg=$2
  [ -e "$path" ] && return 0
  echo "== installing $pkg (for $path)" >&2
  if [ -z "$_apt_updated" ]; then
    _sudo apt-get update -qq >&2
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive _sudo apt-get install -y -qq --no-install-recommends "$pkg" >&2
  [ -e "$path" ] || { echo "error: $pkg did not provide $path" >&2; return 1; }
}
