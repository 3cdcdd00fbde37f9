"""config/gunicorn_conf.py under a real gunicorn (2 workers): no query string in the access log, and /metrics
adds up the counters of every worker process."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings as live_settings
from django.db import connection

BASE_DIR = Path(__file__).resolve().parents[2]
TOKEN = "pbk_never_in_a_log_0123456789"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn(tmp_path):
    """gunicorn with the project's config on the test database, its output in a file."""
    port = _free_port()
    db = live_settings.DATABASES["default"]
    database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{connection.settings_dict['NAME']}"
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    (multiproc / "counter_99999.db").write_bytes(b"left by a previous run")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": "",
        "SECRET_KEY": "gunicorn-test",
        "FIELD_ENCRYPTION_KEY": "",
        "DEBUG": "true",
        "METRICS_TOKEN": "scrape",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
    }
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn_conf.py", "config.wsgi:application",
             "--bind", f"127.0.0.1:{port}", "--workers", "2"],
            cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(f"{base}/metrics", timeout=5)  # (not counted with the healthz requests below)
                break
            except requests.RequestException:
                time.sleep(0.2)
        yield base, log
    finally:
        # Stopped by its own process group, whether it came up or not.
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_access_log_never_shows_the_postback_token_and_metrics_sum_every_worker(gunicorn):
    base, log = gunicorn

    # when: postbacks with their token, and enough requests that both workers answer some
    for _ in range(3):
        requests.post(f"{base}/api/webhook/junglepay?token={TOKEN}", data="{}", headers={"Content-Type": "application/json"}, timeout=5)
    pids = set()
    for _ in range(40):
        pids.add(requests.get(f"{base}/healthz?token={TOKEN}", timeout=5).headers.get("X-Request-ID"))
    scraped = requests.get(f"{base}/metrics", headers={"Authorization": "Bearer scrape"}, timeout=5).text
    time.sleep(0.5)

    # then
    text = log.read_text()
    assert TOKEN not in text
    assert '"POST /api/webhook/junglepay HTTP/1.1"' in text
    assert "rid=" in text and len(pids) == 40  # every answer has an id of its own, printed on its line
    healthz = [line for line in scraped.splitlines() if line.startswith("creatorflix_http_requests_total{") and 'view="healthz"' in line]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in healthz) == 40  # answered by both workers, counted in their own files
    assert TOKEN not in scraped
