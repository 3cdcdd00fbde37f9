"""Every `make bench-*` target checks what it needs first and says how to get it."""

import re
from pathlib import Path

from bench import needs

MAKEFILE = (Path(__file__).resolve().parents[2] / "Makefile").read_text()


def test_every_bench_target_checks_its_needs_first():
    targets = re.findall(r"^(bench-[\w-]+):.*\n((?:\t.*\n)+)", MAKEFILE, flags=re.M)

    assert {name for name, _ in targets} >= {"bench-api", "bench-load", "bench-sweep", "bench-sync", "bench-webhooks"}
    for name, recipe in targets:
        first = recipe.splitlines()[0]
        assert "bench/needs.py" in first, f"{name} does not start with bench/needs.py"
    api_recipe = dict(targets)["bench-api"]
    assert "wrk" in api_recipe.splitlines()[0]


def test_a_missing_wrk_is_named_with_the_command_to_get_it(monkeypatch, capsys):
    monkeypatch.setattr(needs.shutil, "which", lambda name: None)
    monkeypatch.setattr(needs.os, "geteuid", lambda: 1000)  # not root: nothing is installed for you

    assert needs.main(["wrk"]) == 1
    assert "apt-get install wrk" in capsys.readouterr().err


def test_postgres_is_required_by_url(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "sqlite:///db.sqlite3")

    assert needs.main(["postgres"]) == 1
    assert "needs PostgreSQL" in capsys.readouterr().err
