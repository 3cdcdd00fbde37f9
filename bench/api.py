"""
Benchmark of the catalog API against the framework's floor (issue 6).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cf_catalog python bench/api.py [--duration 15]

1. Loads 500 creators, 20,000 posts and 200,000 media into PostgreSQL
   (COPY; rows prefixed `bench-`, reused when already there), then ANALYZE.
2. Starts the app under gunicorn (2 sync workers) on 127.0.0.1 with
   `bench.settings` (production settings + a bare JsonResponse floor view).
3. Runs wrk for N seconds each (in interleaved rounds) against: the floor, `/api/models`,
   `/api/models/<slug>/posts` anonymous, and the same as a subscriber
   (20 posts × 10 media = 200 presigned URLs per page).
4. Prints requests/s, p50/p99 latency, and each endpoint's ratio to the floor;
   plus the raw presigning rates (direct signer, boto3 reused client).

Goals: anonymous listing ≥ 0.5× the floor, subscriber page ≥ 0.35×.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789",
    "FIELD_ENCRYPTION_KEY": "YmVuY2gtb25seS1maWVsZC1rZXktMDEyMzQ1Njc4OTA=",
    "SECURE_SSL_REDIRECT": "false",
    "SESSION_COOKIE_SECURE": "false",
    "CSRF_COOKIE_SECURE": "false",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    # Signing happens offline: any credentials and bucket will do.
    "AWS_ACCESS_KEY_ID": "AKIABENCHMARK",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_S3_REGION_NAME": "sa-east-1",
    "WHITELABEL_BUCKET": "bench-whitelabel",
    "LOG_LEVEL": "WARNING",
}

CREATORS, POSTS, MEDIA = 500, 20_000, 200_000
PREFIX = "bench-"


def setup_django():
    for key, value in BENCH_ENV.items():
        os.environ.setdefault(key, value)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("bench/api.py needs PostgreSQL: set DATABASE_URL=postgres://...")


def load_data() -> str:
    """Returns the slug of a creator with ≥ 20 posts (the page the bench requests)."""
    from django.core.management import call_command
    from django.db import connection, transaction

    from catalog.models import Creator, Media, Post

    call_command("migrate", verbosity=0)
    creators = Creator.objects.filter(slug__startswith=PREFIX)
    have = (
        creators.count(),
        Post.objects.filter(creator__slug__startswith=PREFIX).count(),
        Media.objects.filter(post__creator__slug__startswith=PREFIX).count(),
    )
    if have == (CREATORS, POSTS, MEDIA):
        print(f"data: reusing {CREATORS} creators, {POSTS} posts, {MEDIA} media")
    else:
        started = time.monotonic()
        with transaction.atomic():
            creators.delete()
            # Uneven post counts (10..70, 40 on average) so "most posts first" means something.
            counts = [10 + (i * 37) % 61 for i in range(CREATORS)]
            counts[-1] += POSTS - sum(counts)
            Creator.objects.bulk_create(
                Creator(
                    name=f"Bench Creator {i:03d}",
                    slug=f"{PREFIX}{i:03d}",
                    source_icon_url=f"https://cdn.example.com/bench%20{i}/profile/icon.jpg",
                    source_banner_url=f"https://cdn.example.com/bench%20{i}/profile/banner.jpg",
                    source_thumbnail_url=f"https://cdn.example.com/bench%20{i}/thumb.jpg",
                    post_count=counts[i],
                )
                for i in range(CREATORS)
            )
            ids = list(creators.order_by("slug").values_list("id", flat=True))
            base = datetime(2026, 1, 1, tzinfo=UTC)
            now = datetime.now(UTC)
            with connection.cursor() as cursor, cursor.cursor.copy(
                "COPY catalog_post (creator_id, title, published_at, status, preview, removed_from_source, created_at, updated_at) FROM STDIN"
            ) as copy:
                n = 0
                for creator_index, creator_id in enumerate(ids):
                    for p in range(counts[creator_index]):
                        copy.write_row(
                            (creator_id, f"Post {p} de {creator_index}", base + timedelta(hours=n), "published",
                             "previews/bench.jpg", False, now, now)
                        )
                        n += 1
            post_ids = list(Post.objects.filter(creator_id__in=ids).values_list("id", "creator_id"))
            with connection.cursor() as cursor, cursor.cursor.copy(
                "COPY catalog_media (post_id, type, position, file, key, created_at) FROM STDIN"
            ) as copy:
                for post_id, creator_id in post_ids:
                    for position in range(MEDIA // POSTS):
                        kind = "video" if position == 9 else "image"
                        ext = "mp4" if kind == "video" else "jpg"
                        copy.write_row(
                            (post_id, kind, position, "", f"bench {creator_id}/post {post_id}/{position:02d}.{ext}", now)
                        )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE catalog_creator; ANALYZE catalog_post; ANALYZE catalog_media;")
        print(f"data: loaded {CREATORS} creators, {POSTS} posts, {MEDIA} media in {time.monotonic() - started:.1f}s")
    return creators.filter(post_count__gte=20).order_by("slug").values_list("slug", flat=True)[0]


def subscriber_cookie() -> str:
    """A session cookie of a user with an active subscription."""
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone

    from billing.access import user_has_access
    from billing.models import Plan, Subscription

    User = get_user_model()
    user, _ = User.objects.get_or_create(email="bench-subscriber@example.com", defaults={"name": "Bench"})
    if user.age_confirmed_at is None:  # access needs a confirmed age (contract §8)
        User.objects.filter(pk=user.pk).update(
            birth_date=datetime(1990, 5, 17).date(), age_confirmed_at=timezone.now(), age_confirmed_by="declaration"
        )
        user.refresh_from_db()
    plan, _ = Plan.objects.get_or_create(name="Bench plan", defaults={"price_cents": 2990, "duration_days": 30})
    if not user_has_access(user):
        Subscription.objects.filter(user=user).delete()
        Subscription.objects.create(
            user=user,
            plan=plan,
            status=Subscription.Status.ACTIVE,
            start_date=timezone.now(),
            end_date=timezone.now() + timedelta(days=365),
        )
    if not user_has_access(user):
        sys.exit("the bench subscriber has no access: its page would be the locked one")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"sessionid={session.session_key}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", "2", "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    import urllib.request

    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/floor", timeout=2).read()
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    sys.exit("gunicorn did not start")


def check_subscriber_page(url: str, cookie: str) -> None:
    """The subscriber's page must be the unlocked one (20 posts × 10 presigned URLs), or the figure means nothing."""
    import json
    import urllib.request

    request = urllib.request.Request(url, headers={"Cookie": cookie})
    body = json.loads(urllib.request.urlopen(request, timeout=10).read())
    media = [item for row in body["results"] for item in row["media"]]
    if any(row["locked"] for row in body["results"]) or len(media) != 200 or "X-Amz-Signature" not in media[0]["url"]:
        sys.exit("the subscriber's page is not 20 posts × 10 presigned media")


def parse_wrk(output: str) -> dict:
    def latency(label):
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": latency("50"),
        "p99": latency("99"),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def run_wrk(url: str, duration: int, headers: list[str]) -> dict:
    command = ["wrk", "-t2", "-c4", f"-d{duration}s", "--latency", url]
    for header in headers:
        command[1:1] = ["-H", header]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return parse_wrk(output)


def signing_rates() -> tuple[float, float]:
    from catalog import signing

    keys = [f"bench creator/post {n}/{n:02d}.jpg" for n in range(2000)]
    signer = signing.presigner()
    at = datetime.now(UTC)
    started = time.perf_counter()
    for key in keys:
        signer.presign("bench-whitelabel", key, expires=3600, signed_at=at)
    direct = len(keys) / (time.perf_counter() - started)
    client = signing.s3_client()
    started = time.perf_counter()
    for key in keys[:500]:
        client.generate_presigned_url("get_object", Params={"Bucket": "bench-whitelabel", "Key": key}, ExpiresIn=3600)
    boto = 500 / (time.perf_counter() - started)
    return direct, boto


def cpu_per_request(targets, cookie: str, n: int = 300) -> list[tuple[str, float]]:
    """CPU milliseconds per request in-process (Django test client): steadier than wall time on a busy machine."""
    from django.test import Client

    out = []
    for label, url, headers in targets:
        client = Client(HTTP_HOST="127.0.0.1")
        if headers:
            client.cookies["sessionid"] = cookie.split("=", 1)[1]
        path = "/" + url.split("/", 3)[3]
        for _ in range(20):
            client.get(path)
        started = time.process_time()
        for _ in range(n):
            client.get(path)
        out.append((label, (time.process_time() - started) / n * 1000))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per endpoint (default 15)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds the duration is split into")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")

    setup_django()
    slug = load_data()
    cookie = subscriber_cookie()
    from django.db import connections

    connections.close_all()

    port = free_port()
    server = start_gunicorn(port)
    base = f"http://127.0.0.1:{port}"
    targets = [
        ("floor (bare JsonResponse, 20 rows)", f"{base}/bench/floor", []),
        ("GET /api/models", f"{base}/api/models", []),
        (f"GET /api/models/{slug}/posts anonymous", f"{base}/api/models/{slug}/posts", []),
        (f"GET /api/models/{slug}/posts subscriber", f"{base}/api/models/{slug}/posts", [f"Cookie: {cookie}"]),
    ]
    runs: dict[str, list[dict]] = {label: [] for label, _, _ in targets}
    try:
        check_subscriber_page(targets[3][1], cookie)
        # Warm-up: connections, imports, and the per-process URL cache of each worker.
        for _, url, headers in targets:
            run_wrk(url, 2, headers)
        # Interleaved rounds, so load from elsewhere on the machine hits every endpoint alike.
        per_round = max(1, args.duration // args.rounds)
        for _ in range(args.rounds):
            for label, url, headers in targets:
                runs[label].append(run_wrk(url, per_round, headers))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)

    results = [
        (
            label,
            {
                "rps": statistics.mean(r["rps"] for r in rounds),
                "p50": statistics.median(r["p50"] for r in rounds),
                "p99": statistics.median(r["p99"] for r in rounds),
                "errors": sum(r["errors"] for r in rounds),
            },
        )
        for label, rounds in runs.items()
    ]
    floor = results[0][1]["rps"] or 1.0
    print(f"\nwrk -t2 -c4, {args.duration}s per endpoint in {args.rounds} interleaved rounds, against gunicorn (2 sync workers), PostgreSQL, "
          f"{CREATORS} creators / {POSTS} posts / {MEDIA} media\n")
    print(f"{'endpoint':<58} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'× floor':>8} {'non-2xx':>8}")
    for label, r in results:
        print(f"{label:<58} {r['rps']:>8.0f} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['rps'] / floor:>8.2f} {r['errors']:>8}")
    print("\nin-process CPU per request (test client, no gunicorn/wrk):")
    cpu = cpu_per_request(targets, cookie)
    for label, ms in cpu:
        print(f"  {label:<56} {ms:6.2f} ms  floor/this {cpu[0][1] / ms:5.2f}")
    direct, boto = signing_rates()
    print(f"\npresigning in-process: direct SigV4 signer {direct:,.0f} URLs/s, boto3 reused client {boto:,.0f} URLs/s")
    anonymous, subscriber = results[1][1]["rps"] / floor, results[3][1]["rps"] / floor
    print(f"goals: anonymous listing {anonymous:.2f}× (≥ 0.5), subscriber page {subscriber:.2f}× (≥ 0.35)")


if __name__ == "__main__":
    main()
