#!/usr/bin/env bash
# The privacy centre's and console's pages under load, beside /healthz on the same server in
# the same run, at two vault sizes (the pages must not slow as the vault grows).
#
#   cargo build --release -p steward && bash crates/steward-server/benches/pages.sh
#   SIZES="1000 100000" SECONDS_EACH=10 bash crates/steward-server/benches/pages.sh
#
# Server pinned to core 0, wrk to core 1 (taskset); wrk -t1 -c32. My data is read with a real
# session (an access request confirmed through the outbox's link). Needs wrk, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/../../.."
BIN=${BIN:-target/release/steward}
SIZES=${SIZES:-"1000 100000"}
SECS=${SECONDS_EACH:-10}
PORT=${PORT:-8611}
DECL=examples/004-mailpro.toml
base="http://127.0.0.1:$PORT"

link() { # the newest verification link in the outbox
  python3 - "$1" <<'PY'
import email, glob, os, re, sys
files = sorted(glob.glob(sys.argv[1] + "/*verify-link.eml"), key=os.path.getmtime)
m = email.message_from_binary_file(open(files[-1], "rb"))
for part in m.walk():
    if part.get_content_type() == "text/plain":
        text = part.get_payload(decode=True).decode()
        print(re.search(r"token=([A-Za-z0-9_-]+)", text).group(1))
PY
}

rate() { # requests/s and p99 of one wrk run
  taskset -c 1 wrk -t1 -c32 -d"${SECS}s" --latency "$@" \
    | awk '/Requests\/sec/ {r=$2} / 99%/ {p=$2} END {printf "%s req/s, p99 %s", r, p}'
}

for n in $SIZES; do
  dir=$(mktemp -d /tmp/pages-bench.XXXX)
  python3 - "$dir/people.csv" "$n" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("email,user.name\n")
    for i in range(int(sys.argv[2])):
        f.write(f"person{i}@example.com,Person {i}\n")
PY
  "$BIN" import -d "$DECL" --data-dir "$dir/data" --purpose account "$dir/people.csv" >/dev/null
  taskset -c 0 "$BIN" serve -d "$DECL" --data-dir "$dir/data" --listen "127.0.0.1:$PORT" \
    --consent-rate-ip 100000000/min --request-rate-ip 1000/min >"$dir/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.2; done
  # A session for person 7, as the browser gets one.
  jar="$dir/jar"
  page=$(curl -s -c "$jar" -b "$jar" "$base/privacy/request?kind=access")
  csrf=$(grep -o 'name="csrf" value="[^"]*"' <<<"$page" | head -1 | cut -d'"' -f4)
  once=$(grep -o 'name="once" value="[^"]*"' <<<"$page" | head -1 | cut -d'"' -f4)
  curl -s -c "$jar" -b "$jar" -o /dev/null "$base/privacy/request" -H "Origin: $base" \
    --data "csrf=$csrf&once=$once&kind=access&email=person7%40example.com"
  for _ in $(seq 1 50); do ls "$dir"/data/outbox/*verify-link.eml >/dev/null 2>&1 && break; sleep 0.2; done
  curl -s -c "$jar" -b "$jar" -o /dev/null "$base/requests/verify" --data "token=$(link "$dir/data/outbox")"
  me=$(awk '$6 == "steward-me" {print $7}' "$jar")
  echo "== $n people in the vault =="
  echo "/healthz                   $(rate "$base/healthz")"
  echo "/privacy (the notice)      $(rate "$base/privacy")"
  echo "/privacy/request?kind=…    $(rate "$base/privacy/request?kind=access")"
  echo "/privacy/choices           $(rate "$base/privacy/choices")"
  echo "/admin/sign-in             $(rate "$base/admin/sign-in")"
  echo "/privacy/me (signed in)    $(rate -H "Cookie: steward-me=$me" "$base/privacy/me")"
  kill "$server"; wait "$server" 2>/dev/null || true
  rm -rf "$dir"
done
