"""
What a benchmark needs, checked before it starts (`make bench-*` runs this first):

    python bench/needs.py postgres [redis] [wrk]

A missing Debian tool (wrk) is installed with apt-get when running as root, else
the command to get it is printed; PostgreSQL and Redis must be reachable at the
URLs the benchmark will use. Exits non-zero, saying what is missing, otherwise.
"""

import os
import shutil
import socket
import subprocess
import sys
from urllib.parse import urlsplit

TOOLS = {"wrk": ("wrk", "sudo apt-get install wrk  (Debian/Ubuntu; macOS: brew install wrk)")}
SERVICES = {
    "postgres": ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres", 5432, "a PostgreSQL server (docs/operations.md)"),
    "redis": ("REDIS_URL", "redis://127.0.0.1:6379/7", 6379, "a Redis server (apt-get install redis-server)"),
}


def tool(name: str) -> str | None:
    binary, how = TOOLS[name]
    if shutil.which(binary):
        return None
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"{binary} is missing: installing it with apt-get", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", binary], env=env, check=False)
        if shutil.which(binary):
            return None
    return f"{binary} is not installed; get it with: {how}"


def service(name: str) -> str | None:
    variable, default, port, what = SERVICES[name]
    url = os.environ.get(variable) or default
    parts = urlsplit(url)
    if name == "postgres" and not parts.scheme.startswith("postgres"):
        return f"{variable}={url}: the benchmark needs PostgreSQL, e.g. {variable}={default}"
    host, port = parts.hostname or "127.0.0.1", parts.port or port
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        return f"{what} is not reachable at {host}:{port} ({exc}); set {variable} to one"
    return None


def main(needs: list[str]) -> int:
    problems = [tool(need) if need in TOOLS else service(need) for need in needs]
    problems = [problem for problem in problems if problem]
    for problem in problems:
        print(f"bench: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
