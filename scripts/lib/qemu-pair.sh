# shellcheck shell=bash disable=SC2034,SC2154 # sourced: sets results for its callers, uses their \$work
# One complete pairing with a target's ARM binary under qemu-user, against sfpair-sim (a native
# binary) on 127.0.0.1: pair, token, status --check, a REST call (`sfpair call`),
# forget, and status after forget. Sourced by scripts/test-arm (which checks it) and
# scripts/bench-arm (which times it). Every command is bounded by `timeout`.
# qemu_pair_minimal does the same round with the minimal build (dist/minimal/<target>), which has
# no `call` and no board profiles: flags instead of --board, and it checks that `call` and
# --board are refused.
#
# Needs: $work (a scratch directory), and sim_start before qemu_pair.

SIM_CLIENT_ID=3MVG9sfpair.sim.consumer.key
QEMU_RUN_LIMIT=${QEMU_RUN_LIMIT:-180}
sim_pid=""
# Which build sfpair_under_qemu runs: "" (full) or minimal (scripts/lib/arm.sh dist_dir).
qemu_build=""

# sim_start SIM_BINARY [SIM FLAGS...]: starts the simulator; sets sim_url.
sim_start() {
  local sim=$1
  shift
  rm -f "$work/port"
  "$sim" --port-file "$work/port" --ca-file "$work/ca.pem" "$@" 2>>"$work/sim.log" &
  sim_pid=$!
  for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
  [ -s "$work/port" ] || { echo "error: the simulator did not start:" >&2; cat "$work/sim.log" >&2; return 1; }
  sim_url="https://127.0.0.1:$(cat "$work/port")"
}

sim_stop() {
  if [ -n "$sim_pid" ]; then
    kill "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
  fi
  sim_pid=""
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# store_dir TARGET: the scratch store directory of the current build for a target.
store_dir() { echo "$work/${qemu_build:+$qemu_build/}$1"; }

# sfpair_under_qemu TARGET ARGS...: runs the target's dist binary ($qemu_build) under its qemu
# with a clean environment pointing at the simulator and a scratch store ($work/<build>/<target>);
# output in $work/out, $work/err, the exit code in $last_code and the wall time in $last_ms.
sfpair_under_qemu() {
  local target=$1
  shift
  local bin qemu
  bin=$(dist_binary "$target" "$qemu_build")
  qemu=$(qemu_for "$target")
  local start
  start=$(now_ms)
  set +e
  # shellcheck disable=SC2086 # $qemu is a command line
  env -i PATH="$PATH" HOME="$work/home" \
    SFPAIR_LOGIN_URL="$sim_url" SFPAIR_CLIENT_ID="$SIM_CLIENT_ID" SFPAIR_CA_FILE="$work/ca.pem" \
    SFPAIR_STORE="file:$(store_dir "$target")/token" \
    timeout "$QEMU_RUN_LIMIT" $qemu "$bin" "$@" >"$work/out" 2>"$work/err" </dev/null
  last_code=$?
  set -e
  last_ms=$(($(now_ms) - start))
}

# expect_code TARGET WHAT CODE: fails loudly, with the output, unless the last run exited CODE.
expect_code() {
  if [ "$last_code" != "$3" ]; then
    echo "error: $1: $2 exited $last_code, expected $3" >&2
    echo "--- stdout" >&2; cat "$work/out" >&2
    echo "--- stderr" >&2; cat "$work/err" >&2
    return 1
  fi
}

# qemu_pair TARGET: the whole round; sets pair_ms, token_ms, version_ms and polls.
qemu_pair() {
  local t=$1 board
  board=$(board_for "$t")
  qemu_build=""
  mkdir -p "$work/home"
  rm -rf "$(store_dir "$t")"

  sfpair_under_qemu "$t" --version
  expect_code "$t" "--version" 0
  version_ms=$last_ms

  local before
  before=$(grep -c ' grant=device status=' "$work/sim.log" || true)
  # The board profile for this target, as on the device; the environment points it at the
  # simulator and a scratch store, and --display text stands in for its panel.
  sfpair_under_qemu "$t" pair --board "$board" --display text
  expect_code "$t" "pair --board $board" 0
  pair_ms=$last_ms
  polls=$(($(grep -c ' grant=device status=' "$work/sim.log" || true) - before))
  grep -q "^Paired" "$work/out" || { echo "error: $t: pair did not say it paired:" >&2; cat "$work/out" >&2; return 1; }
  [ "$(stat -c %a "$(store_dir "$t")/token")" = 600 ] || { echo "error: $t: the stored pairing is not mode 0600" >&2; return 1; }

  sfpair_under_qemu "$t" token
  expect_code "$t" token 0
  token_ms=$last_ms
  if [ "$(wc -l <"$work/out")" != 1 ] || [ "$(wc -c <"$work/out")" -le 20 ]; then
    echo "error: $t: token did not print one access token" >&2
    return 1
  fi

  sfpair_under_qemu "$t" status --check
  expect_code "$t" "status --check" 0
  grep -q "the refresh token works" "$work/out" || { echo "error: $t: status --check did not check:" >&2; cat "$work/out" >&2; return 1; }

  # A REST call through the ARM binary: refresh, then GET the org's limits.
  sfpair_under_qemu "$t" call GET limits --api-version 62.0
  expect_code "$t" "call GET limits" 0
  grep -q '"DailyApiRequests"' "$work/out" || { echo "error: $t: call did not print the limits:" >&2; cat "$work/out" >&2; return 1; }

  sfpair_under_qemu "$t" forget
  expect_code "$t" forget 0
  grep -q "^Revoked" "$work/out" || { echo "error: $t: forget did not revoke:" >&2; cat "$work/out" >&2; return 1; }
  [ ! -e "$(store_dir "$t")/token" ] || { echo "error: $t: forget left the store file" >&2; return 1; }

  sfpair_under_qemu "$t" status
  expect_code "$t" "status after forget" 5
}

# qemu_pair_minimal TARGET: the round with the target's minimal build: --version, pair with
# flags (the environment gives the login URL, client id, CA file and store), token,
# status --check, forget, status after forget; and `call` and --board are refused with exit 2
# and a message naming the missing feature. Sets pair_ms, token_ms and polls.
qemu_pair_minimal() {
  local t=$1
  qemu_build=minimal
  mkdir -p "$work/home"
  rm -rf "$(store_dir "$t")"

  sfpair_under_qemu "$t" --version
  expect_code "$t" "minimal --version" 0

  local before
  before=$(grep -c ' grant=device status=' "$work/sim.log" || true)
  sfpair_under_qemu "$t" pair --display text
  expect_code "$t" "minimal pair --display text" 0
  pair_ms=$last_ms
  polls=$(($(grep -c ' grant=device status=' "$work/sim.log" || true) - before))
  grep -q "^Paired" "$work/out" || { echo "error: $t: minimal pair did not say it paired:" >&2; cat "$work/out" >&2; return 1; }
  [ "$(stat -c %a "$(store_dir "$t")/token")" = 600 ] || { echo "error: $t: the minimal build's stored pairing is not mode 0600" >&2; return 1; }

  sfpair_under_qemu "$t" token
  expect_code "$t" "minimal token" 0
  token_ms=$last_ms
  if [ "$(wc -l <"$work/out")" != 1 ] || [ "$(wc -c <"$work/out")" -le 20 ]; then
    echo "error: $t: minimal token did not print one access token" >&2
    return 1
  fi

  sfpair_under_qemu "$t" status --check
  expect_code "$t" "minimal status --check" 0
  grep -q "the refresh token works" "$work/out" || { echo "error: $t: minimal status --check did not check:" >&2; cat "$work/out" >&2; return 1; }

  # What the minimal build leaves out is refused as a usage error that says so.
  local args
  for args in "call GET limits" "pair --board $(board_for "$t")" "serve --socket $work/s"; do
    # shellcheck disable=SC2086 # one word per argument
    sfpair_under_qemu "$t" $args
    expect_code "$t" "minimal $args" 2
    grep -q "built without" "$work/err" || { echo "error: $t: minimal $args did not say what the build lacks:" >&2; cat "$work/err" >&2; return 1; }
  done

  sfpair_under_qemu "$t" forget
  expect_code "$t" "minimal forget" 0
  grep -q "^Revoked" "$work/out" || { echo "error: $t: minimal forget did not revoke:" >&2; cat "$work/out" >&2; return 1; }
  [ ! -e "$(store_dir "$t")/token" ] || { echo "error: $t: minimal forget left the store file" >&2; return 1; }

  sfpair_under_qemu "$t" status
  expect_code "$t" "minimal status after forget" 5
}
