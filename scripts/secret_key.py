"""Print the portal's secret key kept in FILE, making it on the first run (used by `make serve`).

    python scripts/secret_key.py var/secret_key

The file is created once, with mode 0600, and never overwritten; a key file that others may
read, or an empty one, is refused with the command that fixes it.
"""

import os
import secrets
import stat
import sys


def main(path: str) -> int:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as key_file:
            key_file.write(secrets.token_urlsafe(50) + "\n")
        print(f">> generated a secret key in {path}; back it up with the database", file=sys.stderr)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        advice = f"run: chmod 600 {path}"
        print(f"{path} may be read by others (mode {mode:o}); {advice}", file=sys.stderr)
        return 1
    with open(path) as key_file:
        key = key_file.read().strip()
    if not key:
        print(f"{path} is empty; remove it to have a new key made", file=sys.stderr)
        return 1
    print(key)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
