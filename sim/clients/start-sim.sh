# Sourced by scripts/test-clients and scripts/screens-sim: builds and starts sfpair-sim on
# 127.0.0.1 with the clients' schema, a 3-record query page, `localhost` as the instance
# host, a 1 s polling interval and a 2 s Streaming API hold (so a held /meta/connect ends
# within a test); exports SIM_LOGIN_URL, SIM_INSTANCE_URL and
# NODE_EXTRA_CA_CERTS, and a temporary HOME; stops the simulator on exit.
# Expects: the repository root as the working directory, and $work (a temporary directory).

cargo build --quiet -p sfpair-sim
target/debug/sfpair-sim --quiet --interval 1 --query-page-size 3 --instance-host localhost \
  --streaming-hold 2 \
  --schema sim/clients/schema.json --port-file "$work/port" --ca-file "$work/ca.pem" \
  2>"$work/sim.log" &
sim_pid=$!
for _ in $(seq 300); do [ -s "$work/port" ] && break; sleep 0.1; done
if [ ! -s "$work/port" ]; then
  echo "error: sfpair-sim did not start:" >&2
  cat "$work/sim.log" >&2
  exit 1
fi
sim_port=$(cat "$work/port")
export SIM_LOGIN_URL="https://127.0.0.1:$sim_port"
export SIM_INSTANCE_URL="https://localhost:$sim_port"
export NODE_EXTRA_CA_CERTS="$work/ca.pem"
# The Salesforce CLI library keeps its auth files and key under HOME: a throwaway one.
export HOME="$work/home"
mkdir -p "$HOME"
export SF_USE_GENERIC_UNIX_KEYCHAIN=true SF_DISABLE_TELEMETRY=true SF_AUTOUPDATE_DISABLE=true
