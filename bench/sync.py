"""
Benchmark of the white-label sync (issue 5), in one run:

  floor        boto3's paginated listing alone, with the sync's own client (no sync can beat it)
  floor-stock  the same with botocore's stock timestamp parser, for reference
  first        a first sync into empty tables
  unchanged    a re-sync of the unchanged bucket (goal: zero rows written)
  changed-1%   a re-sync after 1% of the keys changed (80% modified, 10% added, 10% deleted)

Each line: seconds, keys/s, queries, rows written, ratio to the floor; then this process's
CPU seconds (all threads; not the database's) and their ratio to the floor's. Each sync run
is paired with a floor listed just before it (ratios are to that floor: the load of a shared
machine drifts); medians of --repeat runs.
The bucket is served by bench/s3_server.py (in-memory ListObjectsV2, in its own process),
filled with ~100,000 keys: 500 creators × 20 posts × 10 files, plus profile images and
keys to skip.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> python bench/sync.py   (or make bench-sync)

It works in a throwaway database `<db>_bench` (created when missing, migrated, its
white-label tables emptied): your own data is never touched.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bench_database_url(base: str) -> tuple[str, str, str]:
    match = re.match(r"^(postgres(?:ql)?://[^/]*)/([^?]+)(\?.*)?$", base)
    if not match:
        sys.exit("bench/sync.py needs DATABASE_URL=postgres://.../<db> (the benchmark runs on PostgreSQL)")
    server, name, query = match.group(1), match.group(2), match.group(3) or ""
    return f"{server}/{name}_bench{query}", f"{server}/postgres{query}", f"{name}_bench"


def ensure_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url.replace("postgresql://", "postgres://"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def start_server(args) -> tuple[subprocess.Popen, int, int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "s3_server.py"),
            "--port",
            "0",
            "--creators",
            str(args.creators),
            "--posts",
            str(args.posts),
            "--files",
            str(args.files),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().split()
    return proc, int(line[1]), int(line[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creators", type=int, default=500)
    parser.add_argument("--posts", type=int, default=20)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (median)")
    args = parser.parse_args()
    database_url, admin_url, database_name = bench_database_url(os.environ.get("DATABASE_URL", ""))
    ensure_database(admin_url, database_name)

    server, port, total_keys = start_server(args)
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "true",  # settings need a key otherwise; query logging is switched off below
            "WHITELABEL_BUCKET": "bench",
            "WHITELABEL_PREFIX": "",
            "AWS_S3_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_S3_REGION_NAME": "us-east-1",
            "REDIS_URL": "",
            "DATABASE_URL": database_url,
            # fixed, so URLs do not change with the server's random port between runs
            "WHITELABEL_CDN_BASE_URL": "https://cdn.bench.example",
        }
    )
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.DEBUG = False
    from django.core.management import call_command

    from whitelabel import s3
    from whitelabel.models import SyncRun, WhitelabelCreator, WhitelabelMedia, WhitelabelPost
    from whitelabel.sync import sync_bucket
    from whitelabel.sync.listing import list_pages

    call_command("migrate", verbosity=0)
    try:

        def reset() -> None:
            WhitelabelMedia.objects.all().delete()
            WhitelabelPost.objects.all().delete()
            WhitelabelCreator.objects.all().delete()
            SyncRun.objects.all().delete()

        def listing(client) -> tuple[float, float, int]:
            cpu, start = time.process_time(), time.perf_counter()
            n = sum(len(page) for page in list_pages(client=client, bucket="bench", prefix=""))
            return time.perf_counter() - start, time.process_time() - cpu, n

        print(
            f"database: {connection.vendor} ({settings.DATABASES['default']['NAME']}), "
            f"endpoint: {endpoint} (in-memory), keys: {total_keys:,}, python {sys.version.split()[0]}"
        )
        header = (
            f"{'run':<12} {'seconds':>8} {'keys/s':>9} {'queries':>8} {'q/page':>7} {'rows':>8} {'x floor':>8}"
            f" {'cpu s':>7} {'cpu x':>6}"
        )
        print(header)
        print("-" * len(header))

        client = s3.get_client()
        floors = sorted(listing(client) for _ in range(args.repeat))
        floor, floor_cpu, n = floors[len(floors) // 2]
        pages = -(-n // 1000)
        print(
            f"{'floor':<12} {floor:8.2f} {n / floor:9,.0f} {'-':>8} {'-':>7} {'-':>8} {1:8.2f}"
            f" {floor_cpu:7.2f} {1:6.2f}"
        )

        import boto3
        from botocore.config import Config

        stock = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            region_name="us-east-1",
            config=Config(signature_version="s3v4"),
        )
        seconds, cpu, n = listing(stock)
        print(
            f"{'floor-stock':<12} {seconds:8.2f} {n / seconds:9,.0f} {'-':>8} {'-':>7} {'-':>8} {seconds / floor:8.2f}"
            f" {cpu:7.2f} {cpu / floor_cpu:6.2f}"
        )

        def change(seed: int) -> str:
            request = urllib.request.Request(
                f"{endpoint}/__bench__/change?fraction=0.01&seed={seed}", method="POST", data=b""
            )
            return urllib.request.urlopen(request).read().decode()

        def measured(label: str, runs: int, before=None) -> None:
            """Each run is paired with a floor listed just before it: the ratio is to that one,
            which keeps it meaningful on a machine whose load drifts. Medians are printed."""
            results = []
            for i in range(runs):
                if before:
                    before(i)
                floor_s, floor_cpu_s, _n = listing(client)
                # CaptureQueriesContext rather than an execute wrapper: it also sees the COPYs
                # (Django's debug cursor logs cursor.copy(); execute wrappers do not see them).
                with CaptureQueriesContext(connection) as captured:
                    cpu, start = time.process_time(), time.perf_counter()
                    result = sync_bucket()
                    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
                # BEGIN/COMMIT are logged too since Django 4.2: leave them out, as before (statements only).
                queries = sum(q["sql"] not in ("BEGIN", "COMMIT", "ROLLBACK") for q in captured.captured_queries)
                results.append((seconds / floor_s, seconds, queries, result, cpu / floor_cpu_s, cpu))
            ratio, seconds, queries, result, cpu_ratio, cpu = sorted(results, key=lambda r: r[0])[len(results) // 2]
            keys = result.counts.keys_listed
            print(
                f"{label:<12} {seconds:8.2f} {keys / seconds:9,.0f} {queries:8,} {queries / result.counts.pages:7.1f} "
                f"{result.counts.rows_written:8,} {ratio:8.2f} {cpu:7.2f} {cpu_ratio:6.2f}"
            )

        measured("first", args.repeat, before=lambda i: reset())
        measured("unchanged", args.repeat)
        changes = []
        measured("changed-1%", args.repeat, before=lambda i: changes.append(change(seed=7 + i)))
        changed = changes[-1]
        print(f"(change applied: {changed}; pages per listing: {pages})")
        print(
            f"rows now: {WhitelabelCreator.objects.count():,} creators, {WhitelabelPost.objects.count():,} posts, "
            f"{WhitelabelMedia.objects.count():,} media"
        )
    finally:
        server.terminate()
        server.wait(timeout=5)


if __name__ == "__main__":
    main()
