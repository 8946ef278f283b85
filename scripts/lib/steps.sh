# shellcheck shell=bash
# Named, timed steps for the test scripts. Sourced, not run.
#
#   step "what it checks"   ends the step before it (printing its seconds) and starts this one
#   steps_done              ends the last step; the outermost script prints the table
#
# Scripts that a script runs (scripts/test -> scripts/test-arm) add their steps to the same
# table, indented, through SFPAIR_STEP_LOG (a file of "start<TAB>seconds<TAB>depth<TAB>name").
# On failure the table still prints, with the failing step marked, so a slow or broken step
# shows where it is.

if [ -z "${SFPAIR_STEP_LOG:-}" ]; then
  SFPAIR_STEP_LOG=$(mktemp)
  SFPAIR_STEP_DEPTH=0
  _steps_owner=1
else
  SFPAIR_STEP_DEPTH=$((${SFPAIR_STEP_DEPTH:-0} + 1))
  _steps_owner=""
fi
export SFPAIR_STEP_LOG SFPAIR_STEP_DEPTH
_step_name=""
_step_start=0
_steps_t0=$(date +%s)

_step_end() {
  [ -n "$_step_name" ] || return 0
  local now secs
  now=$(date +%s)
  secs=$((now - _step_start))
  printf '%s\t%s\t%s\t%s%s\n' "$_step_start" "$secs" "$SFPAIR_STEP_DEPTH" "$_step_name" "${1:-}" >>"$SFPAIR_STEP_LOG"
  echo "== ${secs} s: $_step_name${1:-}" >&2
  _step_name=""
}

step() {
  _step_end
  _step_name=$*
  _step_start=$(date +%s)
  echo "== $*" >&2
}

# Prints the table of every step so far (the outermost script only).
_steps_table() {
  [ -n "$_steps_owner" ] || return 0
  local total=$(($(date +%s) - _steps_t0))
  {
    echo
    echo "== time per step (wall seconds)"
    echo "| step | s |"
    echo "|---|---:|"
    sort -n -k1,1 -k3,3 "$SFPAIR_STEP_LOG" | while IFS=$'\t' read -r _ secs depth name; do
      local indent=""
      for ((i = 0; i < depth; i++)); do indent="$indent- "; done
      echo "| $indent$name | $secs |"
    done
    echo "| total | $total |"
  } >&2
  rm -f "$SFPAIR_STEP_LOG"
}

steps_done() {
  _step_end
  _steps_table
}

# steps_cleanup 'COMMANDS': what the script's own EXIT trap would do (this file owns the trap).
_steps_cleanup=""
steps_cleanup() { _steps_cleanup=$1; }

# On any exit: a step still open failed (or was interrupted); record it as such.
_steps_on_exit() {
  local code=$?
  if [ -n "$_step_name" ]; then _step_end " (FAILED, exit $code)"; fi
  [ -z "$_steps_cleanup" ] || eval "$_steps_cleanup" || true
  _steps_table
  exit "$code"
}
trap _steps_on_exit EXIT
