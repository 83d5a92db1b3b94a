#!/usr/bin/env bash
# The API's hot paths under load — a permit, a look-up by e-mail — beside /healthz on the same
# server in the same run, at two vault sizes (neither may slow as the vault grows).
#
#   cargo build --release -p steward && bash crates/steward-server/benches/api.sh
#   SIZES="10000 100000" SECONDS_EACH=10 bash crates/steward-server/benches/api.sh
#
# Seed 004 (MailPro); N people imported (e-mail, name), each with a newsletter consent given
# through the API. `steward serve` pinned to core 0, wrk to core 1 (taskset), so the ratio to
# /healthz is stable on a noisy 2-core machine. A service key authenticates every request (the
# verified-key cache keeps it in memory until a revocation). The rate limits are raised so
# that every look-up is answered (they are still counted in the store, as in production).
# Needs wrk, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/../../.."
BIN=${BIN:-target/release/steward}
SIZES=${SIZES:-"10000 100000"}
SECS=${SECONDS_EACH:-10}
PORT=${PORT:-8612}
DECL=examples/004-mailpro.toml
base="http://127.0.0.1:$PORT"

rate() { # connections, then wrk's arguments: "requests/s, p99" of one run
  local c=$1
  shift
  taskset -c 1 wrk -t1 -c"$c" -d"${SECS}s" --latency "$@" \
    | awk '/Requests\/sec/ {r=$2} / 99%/ {p=$2} /Non-2xx/ {e=$5} END {printf "%s req/s, p99 %s%s", r, p, (e ? ", NON-2XX " e : "")}'
}

for n in $SIZES; do
  dir=$(mktemp -d /tmp/api-bench.XXXX)
  python3 - "$dir/people.csv" "$n" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("email,user.name\n")
    for i in range(int(sys.argv[2])):
        f.write(f"person{i}@example.com,Person {i}\n")
PY
  "$BIN" import -d "$DECL" --data-dir "$dir/data" --purpose account "$dir/people.csv" >/dev/null
  key=$("$BIN" apikey create -d "$DECL" --data-dir "$dir/data" --role service --name bench)
  taskset -c 0 "$BIN" serve -d "$DECL" --data-dir "$dir/data" --listen "127.0.0.1:$PORT" \
    --lookup-rate-ip 100000000/min --lookup-rate-identity 100000000/min \
    --consent-rate-ip 100000000/min >"$dir/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.2; done
  # 1,000 people's ids (looked up), each given the newsletter consent.
  python3 - "$base" "$key" "$n" "$dir" <<'PY'
import json, random, sys, urllib.request
base, key, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def call(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
ids = []
for i in random.Random(7).sample(range(n), 1000):
    sid = call("/v1/subjects/lookup", {"kind": "email", "value": f"person{i}@example.com"})["id"]
    call("/v1/consent", {"subject": sid, "purpose": "newsletter", "action": "grant",
                         "method": "form"})
    ids.append(sid)
with open(out + "/permits.lua", "w") as f:
    f.write('wrk.headers["Authorization"] = "Bearer %s"\n' % key)
    f.write("ids = {%s}\n" % ",".join('"%s"' % s for s in ids))
    f.write('request = function()\n  return wrk.format("GET", "/v1/permits?purpose=newsletter&subject=" .. ids[math.random(#ids)])\nend\n')
with open(out + "/lookup.lua", "w") as f:
    f.write('wrk.headers["Authorization"] = "Bearer %s"\n' % key)
    f.write('wrk.headers["Content-Type"] = "application/json"\n')
    f.write('wrk.headers["Steward-Purpose"] = "account"\n')
    f.write("n = %d\n" % n)
    f.write('request = function()\n  return wrk.format("POST", "/v1/subjects/lookup", nil, '
            '\'{"kind":"email","value":"person\' .. math.random(0, n - 1) .. \'@example.com"}\')\nend\n')
PY
  echo "== $n people in the vault =="
  echo "/healthz, -c32                  $(rate 32 "$base/healthz")"
  echo "GET /v1/permits, -c64           $(rate 64 -s "$dir/permits.lua" "$base")"
  echo "/healthz, -c64                  $(rate 64 "$base/healthz")"
  echo "POST /v1/subjects/lookup, -c32  $(rate 32 -s "$dir/lookup.lua" "$base")"
  kill "$server"; wait "$server" 2>/dev/null || true
  rm -rf "$dir"
done
