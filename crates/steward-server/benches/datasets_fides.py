#!/usr/bin/env python3
"""Data-subject requests over the operator's own PostgreSQL: Fides's example shop, end to end.

Sets up a fresh Steward folder whose declaration names the shop as a dataset (the manifest is
Fides's own dataset file read by `steward datasets import-fides`), starts `steward serve` pinned
to core 0, and from core 1:

- access: requests for customers spread over the table, each `POST /v1/requests` (vouched by a
  DPO key: carried out at once) one after another, then, once the job queue has mailed their
  links, each package `GET /requests/{id}/package?token=` read to its end, one after another
  (the ZIP: HTML, JSON, CSV, XLSX, gathered from the vault and the shop). A request's time is
  its POST plus its download; the job queue's mail (it runs every second) is not in it;
- erasure: `POST /v1/requests` with `kind = erasure` for other customers: the shop's rows are
  erased in one transaction before the answer;
- the server's memory idle and at its peak.

Needs a database made by ../shared/bench/fides/generate.py (the erasures change it: run the
generator again to restore it), with the indexes `steward datasets check` asks for (e-mail
addresses are matched without regard to case; the script prints any warning check gives).
Example:

    cargo build --release -p steward
    python3 generate.py --create-db --dsn "host=127.0.0.1 dbname=fides_example user=postgres" --customers 100000 --seed 20260501
    for t in customer employee report service_request visit; do
      psql -h 127.0.0.1 -U postgres fides_example -c "CREATE INDEX ON $t (lower(email))"; done
    psql -h 127.0.0.1 -U postgres fides_example -c "CREATE INDEX ON service_request (lower(alt_email))"
    python3 crates/steward-server/benches/datasets_fides.py target/release/steward \
        postgres://postgres@127.0.0.1:5432/fides_example --customers 100000 --requests 1000
"""

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile

ROOT = os.path.dirname(os.path.abspath(__file__))
DATASET = os.path.join(ROOT, "..", "..", "..", "examples", "fides-example-dataset.yml")

ORDERS = """
[[purposes]]
id = "orders"
name = "Your orders"
description = "We take and deliver your orders, keep your addresses and cards for them, and answer your service requests."
use = "essential.service"
basis = "contract"
categories = ["user.name", "user.contact", "user.financial", "user.device.sensor", "user"]
subjects = ["customer"]
retention = "30 days after account closure"

[[datasets]]
id = "shop"
manifest = "shop.toml"
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def memory(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return fields


def call(port, method, path, key=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


SEEN = {}


def link_in(outbox, request_id):
    """The package link in the mail for `request_id`, once the job queue has written it."""
    while request_id not in SEEN:
        for name in os.listdir(outbox) if os.path.isdir(outbox) else []:
            if name in SEEN.get("_files", set()) or not name.endswith(".eml"):
                continue
            text = open(os.path.join(outbox, name), encoding="utf-8").read()
            # quoted-printable: soft line breaks and =3D
            text = text.replace("=\n", "").replace("=3D", "=")
            start = text.find("/package?token=")
            if start < 0 or "Reference: " not in text:
                continue
            SEEN.setdefault("_files", set()).add(name)
            reference = text.split("Reference: ", 1)[1].split()[0]
            SEEN[reference] = text[text.rfind("http", 0, start):].split()[0]
        if request_id not in SEEN:
            time.sleep(0.002)
    return SEEN.pop(request_id)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def steward(binary, work, *args, env=None):
    return subprocess.run([binary, *args], cwd=work, env=env, check=True, capture_output=True, text=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary")
    parser.add_argument("url", help="the shop database (postgres://…)")
    parser.add_argument("--customers", type=int, default=100000, help="how many the database holds")
    parser.add_argument("--requests", type=int, default=1000, help="access requests in a row")
    parser.add_argument("--erasures", type=int, default=20)
    a = parser.parse_args()
    binary = os.path.abspath(a.binary)
    os.sched_setaffinity(0, {1})
    env = dict(os.environ, SHOP_DATABASE_URL=a.url, RUST_LOG="warn")
    with tempfile.TemporaryDirectory() as work:
        steward(binary, work, "init", env=env)
        with open(os.path.join(work, "privacy.toml"), "a") as f:
            f.write(ORDERS)
        steward(binary, work, "datasets", "import-fides", DATASET, "--purpose", "orders",
                "--url-env", "SHOP_DATABASE_URL", "-o", "shop.toml", env=env)
        # What check warns of (an index it lacks) is said: the figures assume none is left.
        checked = subprocess.run([binary, "datasets", "check"], cwd=work, env=env, capture_output=True, text=True)
        for line in checked.stderr.splitlines():
            if "warning:" in line and "dataset" in line or "CREATE INDEX" in line:
                print(line, file=sys.stderr)
        out = steward(binary, work, "apikey", "create", "--role", "dpo", "--name", "bench", env=env).stdout
        key = next(w for w in out.split() if w.startswith("stw_"))
        port = free_port()
        unlimited = "1000000/minute"
        server = subprocess.Popen(
            ["taskset", "-c", "0", binary, "serve", "--listen", f"127.0.0.1:{port}",
             "--lookup-rate-ip", unlimited, "--lookup-rate-identity", unlimited,
             "--request-rate-ip", unlimited, "--request-rate-email", unlimited],
            cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            for _ in range(300):
                try:
                    if call(port, "GET", "/healthz")[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.05)
            else:
                raise SystemExit("the server did not start: " + server.stderr.read().decode())
            outbox = os.path.join(work, "steward-data", "outbox")
            time.sleep(1)
            idle = memory(server.pid)["VmRSS"]

            # Access: customers spread over the table. First every POST, one after another
            # (each carried out at once); then, once the job queue has mailed the links, every
            # package, one after another. A request's time is its POST plus its download.
            step = max(1, a.customers // a.requests)
            customers = [1 + (i * step + i // 7) % a.customers for i in range(a.requests)]
            posts, ids = [], []
            for n in customers:
                t0 = time.perf_counter()
                status, body = call(port, "POST", "/v1/requests", key,
                                    {"kind": "access", "email": f"customer-{n}@example.com", "vouch": True})
                posts.append(time.perf_counter() - t0)
                assert status == 201, body
                ids.append(json.loads(body)["id"])
            t_mail = time.perf_counter()
            links = [link_in(outbox, request_id) for request_id in ids]
            mail_wait = time.perf_counter() - t_mail
            downloads, sizes, rows = [], [], []
            for i, link in enumerate(links):
                t0 = time.perf_counter()
                with urllib.request.urlopen(link, timeout=60) as r:
                    package = r.read()
                downloads.append(time.perf_counter() - t0)
                sizes.append(len(package))
                if i < 5:
                    data = json.loads(zipfile.ZipFile(io.BytesIO(package)).read("data.json"))
                    groups = [g for g in data.get("groups", []) if g.get("source") == "postgres_example_test_dataset"]
                    rows.append((customers[i], sum(len(g["rows"]) for g in groups)))
            totals = [p + d for p, d in zip(posts, downloads)]
            elapsed = sum(totals)
            after_access = memory(server.pid)

            # Erasure: other customers, from the top of the table down.
            # (A customer an earlier run erased is found in no table: skipped, not timed.)
            erasures, n = [], a.customers
            while len(erasures) < a.erasures and n > a.customers // 2:
                t0 = time.perf_counter()
                status, body = call(port, "POST", "/v1/requests", key,
                                    {"kind": "erasure", "email": f"customer-{n}@example.com", "vouch": True})
                t1 = time.perf_counter()
                assert status == 201, body
                n -= 1
                if json.loads(body)["outcome"].get("datasets"):
                    erasures.append(t1 - t0)
            peak = memory(server.pid)["VmHWM"]
            ms = lambda s: round(s * 1000, 1)
            print(json.dumps({
                "customers": a.customers,
                "access_requests": a.requests,
                "access_ms": {"median": ms(statistics.median(totals)), "p90": ms(percentile(totals, 90)),
                              "p99": ms(percentile(totals, 99)), "min": ms(min(totals)), "max": ms(max(totals))},
                "access_per_second": round(a.requests / elapsed, 1),
                "post_ms_median": ms(statistics.median(posts)),
                "download_ms_median": ms(statistics.median(downloads)),
                "mail_queue_after_last_post_ms": ms(mail_wait),
                "package_bytes_median": int(statistics.median(sizes)),
                "shop_rows_in_first_packages": rows,
                "erasure_ms": {"median": ms(statistics.median(erasures)), "p90": ms(percentile(erasures, 90)),
                               "max": ms(max(erasures))},
                "memory_mb": {"idle": round(idle, 1), "after_access": round(after_access["VmRSS"], 1),
                              "peak": round(peak, 1)},
            }, indent=2))
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
