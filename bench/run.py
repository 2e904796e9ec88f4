"""Benchmark the portal against its performance targets on PostgreSQL; print a results table.

    .venv/bin/python bench/run.py            # full run (1M generate/import, 10M reads), ~15 min
    .venv/bin/python bench/run.py --quick    # 100k everywhere, a couple of minutes
    .venv/bin/python bench/run.py --only redeem --only copy

See bench/README.md for what each figure means and the latest table.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from bench.harness import Bench, Result, Run, log  # noqa: E402

SECTIONS = (
    "copy",
    "generate",
    "import",
    "scale",
    "profile",
    "types",
    "redeem",
    "redeem-pinned",
    "redeem-sqlite",
    "portal",
)
RESULTS_DIR = ROOT / "bench" / "results"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--quick", action="store_true", help="100k codes instead of 1M and 10M (a smoke run)"
    )
    parser.add_argument(
        "--only", action="append", choices=SECTIONS, help="run only this section (repeatable)"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or harness.DEFAULT_DATABASE_URL,
        help="PostgreSQL database to DROP and recreate (default: $DATABASE_URL, else "
        f"{harness.DEFAULT_DATABASE_URL})",
    )
    parser.add_argument(
        "--reuse-db",
        action="store_true",
        help="keep the database of an earlier run (e.g. its 10M codes) instead of recreating it",
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads (default 4)")
    parser.add_argument(
        "--http-seconds", type=int, default=15, help="measured seconds per HTTP run (default 15)"
    )
    parser.add_argument("--keep-files", action="store_true", help="keep logs and load files")
    return parser.parse_args()


def ensure_wrk() -> None:
    """Install wrk (Debian package) when missing and we may; else the Python generator is used."""
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        log("wrk is not installed (apt-get install wrk); using the Python load generator")
        return
    log("installing wrk with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600"]
    install = subprocess.run([*apt, "install", "-y", "wrk"], env=env, capture_output=True)
    if install.returncode:
        subprocess.run([*apt, "update"], env=env, capture_output=True)
        subprocess.run([*apt, "install", "-y", "wrk"], env=env, capture_output=True)
    if not shutil.which("wrk"):
        log("could not install wrk; using the Python load generator")


def report(info: dict[str, str], b: Bench, sections: list[str], minutes: float) -> str:
    mode = "quick" if b.quick else "full"
    lines = [
        "# Benchmark results",
        "",
        f"- date: {info['date']}",
        f"- machine: {info['cpus']} CPUs ({info['cpu model']}), {info['memory']} memory",
        f"- PostgreSQL {info['postgresql']} ({info['postgresql settings']}), "
        f"same machine, default configuration",
        f"- Python {info['python']}; commit {info['commit']}",
        f"- load average at start: {info.get('load average at start', '?')}",
        f"- run: `bench/run.py{' --quick' if b.quick else ''}` ({mode}: generate {b.n_generate:,}, "
        f"import {b.n_import:,}, scale {b.n_scale:,}); sections {', '.join(sections)}; "
        f"took {minutes:.1f} min",
        "",
        harness.markdown_table(b.run.results),
        "",
    ]
    lines += [
        "Load average (1, 5, 15 min) when each section started: "
        + "; ".join(f"{k} {v}" for k, v in b.run.load_averages.items())
        + ". Anything well above 0 means other work shared the 2 cores.",
        "",
    ]
    if b.run.notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in b.run.notes] + [""]
    return "\n".join(lines)


def main() -> int:
    args = parse_args()
    # A TERM (e.g. from `timeout`) unwinds like Ctrl-C, so the finally blocks stop our children.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    url = args.database_url
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("bench/run.py measures PostgreSQL: give a postgres:// DATABASE_URL")
    sections = [s for s in SECTIONS if not args.only or s in args.only]
    if {"redeem", "redeem-pinned", "redeem-sqlite", "portal"} & set(sections):
        ensure_wrk()

    var_dir = harness.make_var_dir()
    env = harness.bench_environment(url, var_dir)
    os.environ.update(env)
    if args.reuse_db:
        log(f"reusing database {url}; migrating")
    else:
        log(f"recreating database {url}")
        harness.recreate_database(url)
    harness.manage(env, "migrate", "--noinput")
    # Production settings serve hashed static files: pages rendered in process (scale, types)
    # and by gunicorn (portal) need the manifest, as a deployment does.
    harness.manage(env, "collectstatic", "--noinput")

    import django

    django.setup()
    from bench import (
        http_bench,
        jobs_bench,
        portal_bench,
        profile_bench,
        scale_bench,
        types_bench,
    )

    runners = {
        "copy": jobs_bench.copy_reference,
        "generate": jobs_bench.generate,
        "import": jobs_bench.import_csv,
        "scale": scale_bench.scale,
        "profile": profile_bench.profile,
        "types": types_bench.types,
        "redeem": http_bench.redeem,
        "redeem-pinned": http_bench.redeem_pinned,
        "redeem-sqlite": http_bench.redeem_sqlite,
        "portal": portal_bench.portal,
    }
    small = 100_000
    b = Bench(
        env=env,
        var_dir=var_dir,
        database_url=url,
        quick=args.quick,
        run=Run(),
        n_generate=small if args.quick else 1_000_000,
        n_import=small if args.quick else 1_000_000,
        n_scale=small if args.quick else 10_000_000,
        gunicorn_workers=args.workers,
        gunicorn_threads=args.threads,
        http_seconds=args.http_seconds,
    )
    info = harness.machine_info(url)
    started = time.monotonic()
    failed = False
    try:
        for name in sections:
            log(f"=== {name} === (load average {harness.load_average()})")
            b.run.load_averages[name] = harness.load_average()
            try:
                runners[name](b)
            except Exception as err:
                failed = True
                traceback.print_exc()
                b.run.add(Result(f"{name}: did not complete", f"ERROR: {err}"[:200], passed=False))
            finally:
                harness.stop_all_children()
    finally:
        harness.stop_all_children()
        if args.keep_files:
            log(f"logs and files kept in {var_dir}")
        else:
            harness.remove_var_dir(var_dir)
    minutes = (time.monotonic() - started) / 60
    text = report(info, b, sections, minutes)
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / ("latest-quick.md" if args.quick or args.only else "latest.md")
    out.write_text(text)
    missed = sum(1 for r in b.run.results if r.passed is False)
    log(f"wrote {out.relative_to(ROOT)}; {missed} target(s) missed; {minutes:.1f} min")
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
