#!/usr/bin/env bash
# `steward import` at growing vault sizes, beside a baseline in the same run: Python's sqlite3
# writing the same rows (e-mail + 4 fields, plaintext, one transaction) into a fresh file.
#
#   cargo build --release -p steward && bash crates/steward/benches/import.sh
#   SUBJECTS=1000000 bash crates/steward/benches/import.sh
#
# The file is imported in ten parts of SUBJECTS/10 into one vault, so each tenth's rate shows
# whether the cost per subject grows as the vault does; peak memory from GNU time.
set -euo pipefail
cd "$(dirname "$0")/../../.."
BIN=$(readlink -f "${BIN:-target/release/steward}")
N=${SUBJECTS:-300000}
work=$(mktemp -d /tmp/import-bench.XXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$BIN" init >/dev/null 2>&1
# The starter's `accounts` purpose also collects the four fields.
python3 - <<'PY'
import re
text = open("privacy.toml").read()
text = re.sub(r'(id = "accounts"[^\[]*?categories = \[)', r'\1"user.contact.address", "user.contact.phone_number", ', text, count=1, flags=re.S)
open("privacy.toml", "w").write(text)
PY
python3 - "$N" <<'PY'
import sys
n = int(sys.argv[1]); part = n // 10
for t in range(10):
    with open(f"part{t}.csv", "w") as f:
        f.write("email,user.name,user.contact.address,user.contact.phone_number,user.account.username\n")
        for i in range(t * part, (t + 1) * part):
            f.write(f"user{i}@example.com,User Number {i},{i} Main Street 8000 Zurich,+41 79 {i:07d},user{i}\n")
PY
echo "== steward import, $N subjects in ten parts =="
total=0
for t in $(seq 0 9); do
  start=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "mem$t" "$BIN" import --purpose accounts "part$t.csv" 2>"log$t" || { cat "log$t"; exit 1; }
  end=$(date +%s.%N)
  rate=$(python3 -c "print(f'{$N/10/($end-$start):,.0f}')")
  echo "tenth $((t+1)): $rate subjects/s, peak $(( $(cat mem$t) / 1024 )) MB"
done
echo "== baseline: Python sqlite3, same rows, one transaction =="
python3 - "$N" <<'PY'
import sqlite3, sys, time
n = int(sys.argv[1])
db = sqlite3.connect("baseline.db")
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE people (email TEXT PRIMARY KEY, name TEXT, address TEXT, phone TEXT, username TEXT)")
start = time.time()
with db:
    db.executemany("INSERT INTO people VALUES (?,?,?,?,?)",
        ((f"user{i}@example.com", f"User Number {i}", f"{i} Main Street 8000 Zurich", f"+41 79 {i:07d}", f"user{i}") for i in range(n)))
print(f"{n / (time.time() - start):,.0f} rows/s")
PY
