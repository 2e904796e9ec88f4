"""HTTP load: wrk with bench/redeem.lua, or a Python fallback with the same files and output.

Both read `<dir>/codes-<n>.txt` (lines "token<TAB>scanCode"; n = 1..threads) and POST each line
once as `{"scanCode": ...}` with `Authorization: Bearer <token>`, over persistent connections.
"""

import http.client
import multiprocessing
import shutil
import subprocess
import threading
import time
from pathlib import Path

from bench.harness import ROOT, log, percentile

LUA = ROOT / "bench" / "redeem.lua"


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_wrk(
    *, port: int, path: str, files_dir: Path, threads: int, connections: int, seconds: int
) -> dict[str, float]:
    argv = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}",
        "--",
        str(files_dir),
        path,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=seconds + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if done.returncode or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    stats = {k: float(v) for k, v in (part.split("=") for part in line.split()[1:])}
    return _summary(stats)


def _summary(s: dict[str, float]) -> dict[str, float]:
    seconds = s["duration_us"] / 1e6
    return {
        **s,
        "seconds": seconds,
        "ok_per_s": s["ok"] / seconds,
        "req_per_s": s["requests"] / seconds,
        "p50_ms": s["p50_us"] / 1000,
        "p99_ms": s["p99_us"] / 1000,
        "max_ms": s["max_us"] / 1000,
    }


# --- the Python fallback ------------------------------------------------------------------------


def _client_process(
    port: int,
    path: str,
    lines: list[tuple[str, str]],
    conns: int,
    seconds: float,
    start_at: float,
    out: "multiprocessing.Queue[tuple[int, int, int, list[float]]]",
) -> None:
    latencies: list[float] = []
    counts = {"ok": 0, "bad": 0, "exhausted": 0}
    lock = threading.Lock()
    cursor = iter(lines)

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        own: list[float] = []
        ok = bad = exhausted = 0
        while time.perf_counter() < start_at:
            time.sleep(0.001)
        end = start_at + seconds
        while time.perf_counter() < end:
            with lock:
                item = next(cursor, None)
            if item is None:
                exhausted += 1
                item = lines[0]
            body = f'{{"scanCode":"{item[1]}"}}'
            t0 = time.perf_counter()
            conn.request(
                "POST",
                path,
                body,
                {"Content-Type": "application/json", "Authorization": f"Bearer {item[0]}"},
            )
            response = conn.getresponse()
            response.read()
            own.append(time.perf_counter() - t0)
            if response.status == 200:
                ok += 1
            else:
                bad += 1
        conn.close()
        with lock:
            latencies.extend(own)
            counts["ok"] += ok
            counts["bad"] += bad
            counts["exhausted"] += exhausted

    workers = [threading.Thread(target=worker) for _ in range(conns)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put((counts["ok"], counts["bad"], counts["exhausted"], latencies))


def run_python(
    *, port: int, path: str, files_dir: Path, threads: int, connections: int, seconds: int
) -> dict[str, float]:
    """`threads` client processes, each holding connections/threads persistent connections."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    per_process = max(1, connections // threads)
    start_at = time.perf_counter() + 2.0  # spawn start-up happens before the clock runs
    procs = []
    for n in range(1, threads + 1):
        lines = [
            tuple(line.split("\t", 1))
            for line in (files_dir / f"codes-{n}.txt").read_text().splitlines()
        ]
        p = ctx.Process(
            target=_client_process,
            args=(port, path, lines, per_process, seconds, start_at, out),
        )
        p.start()
        procs.append(p)
    ok = bad = exhausted = 0
    latencies: list[float] = []
    for _ in procs:
        o, b, e, lat = out.get(timeout=seconds + 120)
        ok, bad, exhausted = ok + o, bad + b, exhausted + e
        latencies.extend(lat)
    for p in procs:
        p.join()
    stats = {
        "ok": ok,
        "bad": bad,
        "exhausted": exhausted,
        "requests": ok + bad,
        "duration_us": seconds * 1e6,
        "p50_us": percentile(latencies, 50) * 1e6 if latencies else 0,
        "p90_us": percentile(latencies, 90) * 1e6 if latencies else 0,
        "p99_us": percentile(latencies, 99) * 1e6 if latencies else 0,
        "max_us": max(latencies, default=0) * 1e6,
    }
    return _summary(stats)


def run_load(**kwargs) -> tuple[str, dict[str, float]]:
    """Run wrk when installed, else the Python generator; return (tool name, stats)."""
    if wrk_path():
        return "wrk", run_wrk(**kwargs)
    log("wrk not found: using the Python load generator (it competes for the same 2 cores)")
    return "python", run_python(**kwargs)
