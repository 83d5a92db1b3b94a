#!/usr/bin/env python3
"""What a burst of failed staff sign-ins makes `steward serve` hold in memory.

Starts the given steward binary (`serve`, seed 004, a fresh data folder), then sends bursts of
concurrent `POST /v1/session` with wrong passwords — 30 from one address (within the per-address
limit) and 60 from 60 addresses (X-Forwarded-For, with --trust-forwarded-for) — and reports the
server's resident memory before, at its peak (VmHWM) and 5 s after each burst, and 65 s after
the last one (the password workers free their memory after a minute idle), and how the answers
were spread (401 sign-in-failed, 503 busy, 429 rate-limited).

    cargo build --release -p steward
    python3 crates/steward-server/benches/signin_burst.py target/release/steward
"""

import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.abspath(__file__))
DECLARATION = os.path.join(ROOT, "..", "..", "..", "examples", "004-mailpro.toml")


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


def sign_in(port, n, address):
    body = json.dumps({"username": f"guess{n}", "password": "not-the-password-123"}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/session",
        data=body,
        headers={"Content-Type": "application/json", **({"X-Forwarded-For": address} if address else {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def burst(port, pid, count, addresses):
    before = memory(pid)["VmRSS"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        statuses = list(pool.map(lambda n: sign_in(port, n, addresses(n)), range(count)))
    peak = memory(pid)["VmHWM"]
    time.sleep(5)
    after = memory(pid)["VmRSS"]
    spread = {s: statuses.count(s) for s in sorted(set(statuses))}
    return before, peak, after, spread


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/steward")
    port = free_port()
    with tempfile.TemporaryDirectory() as work:
        server = subprocess.Popen(
            [binary, "serve", "-d", DECLARATION, "--listen", f"127.0.0.1:{port}",
             "--trust-forwarded-for", "--signin-rate-user", "1000/min"],
            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            idle = memory(server.pid)["VmRSS"]
            print(f"idle: {idle:.1f} MB RSS")
            for label, count, addresses in [
                ("30 at once from one address", 30, lambda n: "198.51.100.1"),
                ("60 at once from 60 addresses", 60, lambda n: f"198.51.100.{n + 10}"),
            ]:
                before, peak, after, spread = burst(port, server.pid, count, addresses)
                print(f"{label}: before {before:.1f} MB, peak {peak:.1f} MB, 5 s after {after:.1f} MB; answers {spread}")
            time.sleep(65)
            print(f"65 s after the last burst: {memory(server.pid)['VmRSS']:.1f} MB RSS")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
