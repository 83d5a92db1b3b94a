#!/usr/bin/env bash
# Every throughput figure of issue 21, each beside its baseline measured in the same run, and
# the ratios — one command, for BENCHMARKS.md:
#
#   bash benches/suite.sh                 # the full sizes (about 20 minutes on 2 cores)
#   QUICK=1 bash benches/suite.sh         # small sizes, to check the suite itself (about 5)
#
# Builds the release binary, then runs, one after the other (never two at once: the machine
# has two cores and the HTTP benches pin the server to one and wrk to the other):
#   audit verify      cargo bench -p steward-store --bench audit   vs SQLite scanning the rows
#   permits, look-up  crates/steward-server/benches/api.sh          vs /healthz, same server
#   centre pages      crates/steward-server/benches/pages.sh        vs /healthz, same server
#   import            crates/steward/benches/import.sh              vs Python's sqlite3, same rows
# and prints a table: figure, baseline, ratio. Each bench's own output is kept in
# $OUT (default /tmp/steward-bench-suite) for the detail. Needs wrk, curl, python3, taskset.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/steward-bench-suite}
mkdir -p "$OUT"
if [ -n "${QUICK:-}" ]; then
  sizes="1000 10000"; secs=3; subjects=50000
else
  sizes="10000 100000"; secs=10; subjects=1000000
fi
for tool in wrk curl python3 taskset; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed (apt-get install wrk curl python3 util-linux)" >&2; exit 2; }
done

echo "building the release binary …" >&2
cargo build --release -p steward >"$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log" >&2; exit 1; }

echo "audit verify (criterion) …" >&2
cargo bench -p steward-store --bench audit -- "verify/sqlite/200k\$|baseline" >"$OUT/audit.log" 2>&1
echo "permits and look-ups …" >&2
SIZES="$sizes" SECONDS_EACH=$secs bash crates/steward-server/benches/api.sh >"$OUT/api.log" 2>&1
echo "privacy centre pages …" >&2
SIZES="$sizes" SECONDS_EACH=$secs bash crates/steward-server/benches/pages.sh >"$OUT/pages.log" 2>&1
echo "import, $subjects subjects …" >&2
SUBJECTS=$subjects bash crates/steward/benches/import.sh >"$OUT/import.log" 2>&1

python3 - "$OUT" <<'PY'
import re, sys
out = sys.argv[1]
rows = []

def read(name):
    return open(f"{out}/{name}").read()

# Criterion: "audit/<name>\n time: [...] \n thrpt: [lo MID hi]" — the middle figure.
audit = read("audit.log")
def thrpt(name):
    m = re.search(re.escape(name) + r"\s*\n\s*time:.*\n\s*thrpt:\s*\[\S+ \S+ (\S+) (\S+)", audit)
    if not m:
        return None
    value, unit = float(m.group(1)), m.group(2)
    return value * {"elem/s": 1, "Kelem/s": 1e3, "Melem/s": 1e6}.get(unit, 1)
verify, scan = thrpt("audit/verify/sqlite/200k"), thrpt("audit/baseline/sqlite-scan/200k")
if verify and scan:
    rows.append(("audit verify, entries/s (target 500,000)", verify, "SQLite scanning every column", scan))

# api.sh and pages.sh: per size, "<path> <rate> req/s, p99 <p99>".
def per_size(text):
    sizes = {}
    for block in re.split(r"^== ", text, flags=re.M)[1:]:
        size = block.split(" ", 1)[0]
        paths = {}
        for line in block.splitlines()[1:]:
            m = re.match(r"(.+?)\s{2,}([\d.]+) req/s, p99 (\S+)", line)
            if m:
                paths[m.group(1).strip()] = (float(m.group(2)), m.group(3))
        sizes[size] = paths
    return sizes
for size, p in per_size(read("api.log")).items():
    base32, base64 = p.get("/healthz, -c32"), p.get("/healthz, -c64")
    if "GET /v1/permits, -c64" in p and base64:
        rows.append((f"permits at {size} people, req/s (p99 {p['GET /v1/permits, -c64'][1]}; target 60 %)",
                     p["GET /v1/permits, -c64"][0], "/healthz -c64", base64[0]))
    if "POST /v1/subjects/lookup, -c32" in p and base32:
        rows.append((f"look-ups at {size} people, req/s (p99 {p['POST /v1/subjects/lookup, -c32'][1]}; target 30 %)",
                     p["POST /v1/subjects/lookup, -c32"][0], "/healthz -c32", base32[0]))
for size, p in per_size(read("pages.log")).items():
    base = p.get("/healthz")
    for path, (rate, p99) in p.items():
        if path != "/healthz" and base:
            rows.append((f"{path} at {size} people, req/s (p99 {p99})", rate, "/healthz", base[0]))

# import.sh: ten tenths and the baseline.
imp = read("import.log")
tenths = [float(x.replace(",", "")) for x in re.findall(r"tenth \d+: ([\d,]+) subjects/s", imp)]
peak = max((int(x) for x in re.findall(r"peak (\d+) MB", imp)), default=0)
base = re.search(r"([\d,]+) rows/s", imp)
if tenths and base:
    b = float(base.group(1).replace(",", ""))
    rows.append(("import, first tenth, subjects/s (target 20,000)", tenths[0], "Python sqlite3, same rows", b))
    rows.append((f"import, last tenth, subjects/s (peak {peak} MB; target within 20 % of the first)", tenths[-1], "first tenth", tenths[0]))

width = max(len(r[0]) for r in rows) if rows else 10
print(f"{'figure'.ljust(width)}  {'measured':>12}  {'baseline, same run':<30} {'value':>12}  ratio")
for name, value, bname, bvalue in rows:
    print(f"{name.ljust(width)}  {value:>12,.0f}  {bname:<30} {bvalue:>12,.0f}  {value / bvalue:.2f}")
PY
