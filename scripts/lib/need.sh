# shellcheck shell=bash
# Shared by the scripts: install what a step needs, on a fresh machine. Sourced, not run.
#
#   need NAME...   makes sure each NAME from scripts/lib/needs.txt is present, judged by what
#                  the step needs (a command, a file such as a C header, a Python module, a
#                  rustup part), and installs the missing ones: Debian packages in one
#                  apt-get call (sudo when not root), then rustup parts, PyPI tools, crates.
#
# needs.txt is the one list of what the scripts install (scripts/rehearse-fresh removes from
# it); a name that is not listed there fails, so nothing is installed that the list misses.
# Every call is a no-op when the things are present.

_need_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NEEDS_LIST="$_need_dir/needs.txt"

_sudo() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# needs_entries: the list without comments, one "NAME KIND CHECK [image]" line each.
needs_entries() { grep -v '^[[:space:]]*\(#\|$\)' "$NEEDS_LIST"; }

# _need_lookup NAME: sets _kind, _check, _version, _name from the list; fails when unlisted.
_need_lookup() {
  local want=$1 name kind check rest
  while read -r name kind check rest; do
    if [ "${name%%=*}" = "$want" ]; then
      _name=${name%%=*}
      _version=""
      [ "$name" = "$_name" ] || _version=${name#*=}
      _kind=$kind
      _check=$check
      return 0
    fi
  done < <(needs_entries)
  echo "error: '$want' is not in scripts/lib/needs.txt: add a line for it there (what it is, and the command or file that tells it is present)" >&2
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

# _rustup TOOLCHAIN ARGS...: rustup with +TOOLCHAIN in front, or nothing for the default (the
# one cargo uses here).
_rustup() {
  local tc=$1
  shift
  if [ "$tc" != default ]; then rustup "+$tc" "$@"; else rustup "$@"; fi
}

# _have KIND CHECK NAME: whether the thing is present.
_have() {
  local kind=$1 check=$2 name=$3
  case $kind in
    apt | pip | cargo)
      case $check in
        /*) [ -e "$check" ] ;;
        py:*) python3 -c "import ${check#py:}" >/dev/null 2>&1 ;;
        *) command -v "$check" >/dev/null 2>&1 ;;
      esac
      ;;
    target) _rustup "$check" target list --installed 2>/dev/null | grep -qx "$name" ;;
    component) _rustup "$check" component list --installed 2>/dev/null | grep -q "^$name\(-\|$\)" ;;
    toolchain) rustup toolchain list 2>/dev/null | grep -q "^$name" ;;
    *) echo "error: scripts/lib/needs.txt: $name has an unknown kind '$kind'" >&2; return 2 ;;
  esac
}

# apt-get, waiting up to 5 minutes for another apt/dpkg run to let go of the lock.
_apt() {
  DEBIAN_FRONTEND=noninteractive _sudo apt-get -o DPkg::Lock::Timeout=300 "$@"
}

# Once per run (exported, so the scripts a script calls do not update again).
_apt_update() {
  [ -n "${SFPAIR_APT_UPDATED:-}" ] && return 0
  echo "== apt-get update" >&2
  _apt update -qq >&2 || { echo "error: apt-get update failed" >&2; return 1; }
  export SFPAIR_APT_UPDATED=1
}

need() {
  local want apt_missing=() later=() item
  _pip_paths
  for want in "$@"; do
    _need_lookup "$want" || return 1
    _have "$_kind" "$_check" "$_name" && continue
    case $_kind in
      apt) apt_missing+=("$_name") ;;
      cache) ;;
      *) later+=("$_kind $_name $_check ${_version:--}") ;;
    esac
  done
  if [ ${#apt_missing[@]} -gt 0 ]; then
    _apt_update
    echo "== installing ${apt_missing[*]} (apt)" >&2
    _apt install -y -qq --no-install-recommends "${apt_missing[@]}" >&2 ||
      { echo "error: apt-get could not install ${apt_missing[*]}" >&2; return 1; }
  fi
  local kind name check version
  for item in "${later[@]}"; do
    read -r kind name check version <<<"$item"
    [ "$version" = - ] && version=""
    case $kind in
      toolchain)
        echo "== installing rust toolchain $name" >&2
        rustup toolchain install "$name" --profile minimal >&2 ;;
      target)
        echo "== adding rustup target $name ($check)" >&2
        _rustup "$check" target add "$name" >&2 ;;
      component)
        echo "== adding rustup component $name ($check)" >&2
        _rustup "$check" component add "$name" >&2 ;;
      pip)
        _have apt py:pip python3-pip || need python3 python3-pip || return 1
        echo "== installing $name==$version with pip" >&2
        python3 -m pip install --quiet --disable-pip-version-check "$name==$version" >&2 ||
          python3 -m pip install --quiet --disable-pip-version-check --user --break-system-packages "$name==$version" >&2
        _pip_paths
        hash -r ;;
      cargo)
        # --debug: these are command-line drivers whose own speed does not matter, and a
        # debug build compiles in about half the CPU time (cargo-fuzz: 35 s against 65 s).
        echo "== installing $name $version from crates.io (cargo install --debug, compiles it)" >&2
        cargo install "$name" --version "$version" --locked --debug --quiet >&2 ;;
    esac || { echo "error: could not install $name ($kind)" >&2; return 1; }
  done
  # Checked again: an install that "worked" but left the file missing fails here, not later.
  for want in "$@"; do
    _need_lookup "$want"
    [ "$_kind" = cache ] && continue
    _have "$_kind" "$_check" "$_name" ||
      { echo "error: $_name was installed but $_check is still missing" >&2; return 1; }
  done
}

need_cargo() {
  command -v cargo >/dev/null 2>&1 && return 0
  echo "error: cargo is missing: install Rust with rustup (https://rustup.rs) first" >&2
  return 1
}

# The older one-thing forms, kept for scripts on other branches: each one only names an entry
# of needs.txt (the COMMAND or PATH argument is what needs.txt already says).
need_apt() { need "$2"; }
need_file() { need "$2"; }
need_target() { need "$1"; }
need_component() { need "$1"; }
need_toolchain() { need "$1"; }
need_pip() { shift; local spec names=(); for spec in "$@"; do names+=("${spec%%==*}"); done; need "${names[@]}"; }
