# shellcheck shell=bash
# Named, timed steps for the test scripts. Sourced, not run.
#
#   step "what it checks"   ends the step before it (printing its seconds) and starts this one
#   steps_done              ends the last step; the outermost script prints the table
#
# Scripts that a script runs (scripts/test -> scripts/test-arm) add their steps to the same
# table, indented, through SFPAIR_STEP_LOG (lines "start<TAB>wall s<TAB>CPU s<TAB>depth<TAB>name").
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
_step_cpu0=0
_steps_t0=$(date +%s)

# CPU seconds (user + system) used so far by the commands this script waited for: on a shared
# machine wall time swells with the others' load, CPU time much less.
# Sets _cpu. Never call it inside $(...): a subshell would count only its own children.
_cpu_read() {
  times >"$SFPAIR_STEP_LOG.times"
  _cpu=$(awk 'END { t = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); sub(/s$/, "", p[2]); t += p[1] * 60 + p[2] }; printf "%d\n", t }' "$SFPAIR_STEP_LOG.times")
}

_step_end() {
  [ -n "$_step_name" ] || return 0
  local now secs cpu
  now=$(date +%s)
  secs=$((now - _step_start))
  _cpu_read
  cpu=$((_cpu - _step_cpu0))
  printf '%s\t%s\t%s\t%s\t%s%s\n' "$_step_start" "$secs" "$cpu" "$SFPAIR_STEP_DEPTH" "$_step_name" "${1:-}" >>"$SFPAIR_STEP_LOG"
  echo "== ${secs} s (CPU ${cpu} s): $_step_name${1:-}" >&2
  _step_name=""
}

step() {
  _step_end
  _step_name=$*
  _step_start=$(date +%s)
  _cpu_read
  _step_cpu0=$_cpu
  echo "== $*" >&2
}

# Prints the table of every step so far (the outermost script only).
_steps_table() {
  [ -n "$_steps_owner" ] || { rm -f "$SFPAIR_STEP_LOG.times"; return 0; }
  [ -e "$SFPAIR_STEP_LOG" ] || return 0
  local total=$(($(date +%s) - _steps_t0))
  _cpu_read
  {
    echo
    echo "== time per step (wall seconds, and CPU seconds of the step's commands)"
    echo "| step | wall s | CPU s |"
    echo "|---|---:|---:|"
    sort -s -n -k1,1 -k4,4 "$SFPAIR_STEP_LOG" | while IFS=$'\t' read -r _ secs cpu depth name; do
      local indent=""
      for ((i = 0; i < depth; i++)); do indent="$indent- "; done
      echo "| $indent$name | $secs | $cpu |"
    done
    echo "| total | $total | $_cpu |"
  } >&2
  rm -f "$SFPAIR_STEP_LOG" "$SFPAIR_STEP_LOG.times"
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
