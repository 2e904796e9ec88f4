"""Prepare the SQLite redeem run in a process of its own (the bench process uses PostgreSQL).

    python -m bench.sqlite_prep DIR WARM RUN     # with DATABASE_URL unset and SQLITE_PATH set

Migrates the SQLite database, generates WARM + RUN Available codes and the user tokens, and
writes the load files DIR/warm and DIR/run exactly as the PostgreSQL run does.
"""

import random
import sys
from pathlib import Path

import django


def main() -> None:
    out, warm_n, run_n = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    django.setup()
    from django.core.management import call_command

    from bench.http_bench import PROFILES, _available_codes, _tokens, _write_files

    call_command("migrate", verbosity=0)
    scan_codes = _available_codes("bench-redeem-sqlite", warm_n + run_n)
    random.shuffle(scan_codes)
    tokens = _tokens(PROFILES)
    _write_files(out / "warm", scan_codes[:warm_n], tokens)
    _write_files(out / "run", scan_codes[warm_n:], tokens)


if __name__ == "__main__":
    main()
