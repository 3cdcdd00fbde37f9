"""
Lighthouse and axe-core on the public pages (`make audit-pages`, issue 22).

Boots the `make run` shape (runserver, DEBUG on, SQLite, local media, the
sandbox gateway) on a throwaway database with `load_demo`, makes a visitor who
passed the 18+ gate and a subscriber who paid a PIX through the API, then
audits the home page, a creator, the plans, a checkout and the account, each at
phone and desktop size:

- Lighthouse (npm `lighthouse`, Debian's Chromium): accessibility and best
  practices must score 100, SEO at least 95; performance is printed only (a
  shared machine makes it noisy).
- axe-core, injected into the page by Selenium (chromedriver): no violation of
  impact serious or critical.

The npm packages are pinned in rehearsal/audit/package-lock.json and installed
with `npm ci` into .rehearsal-cache/audit/ (again only when the lock changes).
The table goes to stdout; the figures to artifacts/audit-pages/summary.json, and
each Lighthouse report and axe result next to it. Exits non-zero on any miss.

    .venv/bin/python -m rehearsal.audit_pages [--only home,plans]
"""

import argparse
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from rehearsal.procs import Processes, free_port, http_ok, wait_until
from rehearsal.run import CHROME_FLAGS, find_binary, valid_cpf

ROOT = Path(__file__).resolve().parent.parent
NPM_DIR = Path(__file__).resolve().parent / "audit"
CACHE = ROOT / ".rehearsal-cache" / "audit"
RUN_DIR = CACHE / "run"
ARTIFACTS = ROOT / "artifacts" / "audit-pages"
BIN = Path(sys.executable).parent

# Lighthouse category → the least score CI accepts (None: printed only).
THRESHOLDS = {"accessibility": 100, "best-practices": 100, "seo": 95, "performance": None}
# axe impacts that fail the run (minor and moderate are printed).
FAILING_IMPACTS = ("serious", "critical")
# Lighthouse's own presets; axe gets a window of the same kind (the browser tour's phone is 390 px wide).
FORM_FACTORS = {
    "phone": {"lighthouse": [], "window": (390, 844)},
    "desktop": {"lighthouse": ["--preset=desktop"], "window": (1350, 940)},
}
SUBSCRIBER = {"name": "Ana Auditoria", "email": "ana.auditoria@example.com", "phone": "11987654321", "birth_date": "1991-03-09"}


@dataclass
class Page:
    name: str
    path: str
    who: str  # "visitor" (passed the 18+ gate) or "subscriber" (logged in, one paid PIX)


@dataclass
class Result:
    page: Page
    form_factor: str
    scores: dict = field(default_factory=dict)
    failed_audits: dict = field(default_factory=dict)  # category → ["audit id: title"]
    axe: list = field(default_factory=list)  # [{"id", "impact", "nodes", "help"}]
    errors: list = field(default_factory=list)
    note: str = ""  # a Lighthouse run retried, and why

    @property
    def name(self) -> str:
        return f"{self.page.name}-{self.form_factor}"

    def misses(self) -> list[str]:
        found = list(self.errors)
        for category, least in THRESHOLDS.items():
            score = self.scores.get(category)
            if least is not None and self.scores and (score is None or score < least):
                found.append(
                    f"{category} {score} < {least}: {', '.join(self.failed_audits.get(category, [])) or 'no audit named'}"
                )
        found += [
            f"axe {v['impact']} {v['id']} ({v['nodes']} nodes): {v['help']}" for v in self.axe if v["impact"] in FAILING_IMPACTS
        ]
        return found


def step(name: str, started: float) -> None:
    print(f"{time.monotonic() - started:7.1f}s  {name}", flush=True)


def sh(argv, *, env=None, cwd=ROOT, timeout=600) -> str:
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, argv[:4]))} exited {result.returncode}: {(result.stdout + result.stderr)[-2000:]}"
        )
    return result.stdout


# ---------------------------------------------------------------------------
# The tools: npm packages (cached by their lock), Chromium and chromedriver
# ---------------------------------------------------------------------------
def install_npm_packages() -> str:
    lock = (NPM_DIR / "package-lock.json").read_bytes()
    wanted = hashlib.sha256(lock + (NPM_DIR / "package.json").read_bytes()).hexdigest()
    stamp = CACHE / "npm-stamp"
    if stamp.exists() and stamp.read_text() == wanted and (CACHE / "node_modules").is_dir():
        return "cached"
    if not shutil.which("npm"):
        raise RuntimeError("needs Node.js 18.16+ and npm (Debian: apt-get install nodejs npm)")
    CACHE.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(NPM_DIR / name, CACHE / name)
    sh(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], cwd=CACHE, timeout=900)
    stamp.write_text(wanted)
    return "installed with npm ci"


def browser_binaries() -> tuple[str, str]:
    chromium, chromedriver = find_binary("chromium", "chromium-browser"), find_binary("chromedriver")
    if not chromium or not chromedriver:
        raise RuntimeError("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    return chromium, chromedriver


# ---------------------------------------------------------------------------
# The site: `make run`'s shape on a throwaway SQLite database
# ---------------------------------------------------------------------------
def site_env(base: str) -> dict:
    return {
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "HOME": os.environ.get("HOME", str(RUN_DIR)),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "DEBUG": "true",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": f"sqlite:///{RUN_DIR / 'site.sqlite3'}",
        "REDIS_URL": "",
        "AWS_STORAGE_BUCKET_NAME": "",
        "MEDIA_ROOT": str(RUN_DIR / "media"),
        "SITE_URL": base,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }


def start_site(procs: Processes, env: dict, port: int, base: str) -> None:
    manage = [str(BIN / "python"), "manage.py"]
    sh([*manage, "migrate", "--noinput", "-v", "0"], env=env)
    sh([*manage, "load_demo", "--no-sales"], env=env)
    procs.start("runserver", [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"], env=env)
    wait_until(lambda: http_ok(f"{base}/healthz"), timeout=60, what="runserver's /healthz", alive=procs.check_alive)


def csrf_session(base: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base}/plans/", timeout=30).raise_for_status()  # the language form sets the csrftoken cookie
    return session


def visitor(base: str) -> requests.Session:
    """A visitor who answered the 18+ gate (creator pages show the gate until then)."""
    session = csrf_session(base)
    answer = session.post(
        f"{base}/accounts/age/gate/",
        data={"csrfmiddlewaretoken": session.cookies["csrftoken"], "next": "/"},
        timeout=30,
        allow_redirects=False,
    )
    if answer.status_code != 302:
        raise RuntimeError(f"the 18+ gate answered {answer.status_code}")
    return session


def subscriber(base: str, plan: dict) -> requests.Session:
    """A guest who paid a PIX (the sandbox's simulation) and was signed in where they paid: the account has a history."""
    session = csrf_session(base)
    headers = {"X-CSRFToken": session.cookies["csrftoken"], "Referer": f"{base}/checkout/{plan['id']}/"}

    def post(path: str, body: dict) -> dict:
        response = session.post(f"{base}{path}", json=body, headers=headers, timeout=30)
        if response.status_code >= 300:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    checkout = post(
        "/api/checkout/process",
        {"plan_id": plan["id"], "payment_method": "pix", "order_bump_ids": [], "cpf": valid_cpf(22), **SUBSCRIBER},
    )
    checkout_id = checkout["checkout_id"]
    post("/api/checkout/pix", {"checkout_id": checkout_id})
    if post(f"/api/checkout/{checkout_id}/simulate", {"outcome": "paid"})["status"] != "paid":
        raise RuntimeError("the simulated PIX payment did not turn the checkout paid")
    post(f"/api/checkout/{checkout_id}/sign-in", {})
    return session


def pages(base: str, visitor_session: requests.Session) -> tuple[list[Page], dict]:
    plans = visitor_session.get(f"{base}/api/plans", timeout=30).json()
    plans = plans["results"] if isinstance(plans, dict) else plans
    checkout_plan = next(p for p in plans if p["accepts_card"])  # the fullest form: PIX and card
    paid_plan = next(p for p in plans if p["name"] == "Trimestral")  # no trial: a real PIX in the history
    creators = visitor_session.get(f"{base}/models/", timeout=30).text
    slug = re.search(r'href="/models/([\w-]+)/"', creators).group(1)  # the first creator listed
    listed = [
        Page("home", "/", "visitor"),
        Page("creator", f"/models/{slug}/", "visitor"),
        Page("plans", "/plans/", "visitor"),
        Page("checkout", f"/checkout/{checkout_plan['id']}/", "visitor"),
        Page("account", "/account/", "subscriber"),
    ]
    return listed, paid_plan


def cookie_header(session: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


# ---------------------------------------------------------------------------
# The audits
# ---------------------------------------------------------------------------
def lighthouse(procs: Processes, name: str, url: str, form_factor: str, cookies: str, chromium: str) -> tuple[dict, dict, str]:
    """
    Lighthouse on one page and form factor: its scores, the audits that lost points, and a note. A run that
    Lighthouse itself could not finish (a runtime error such as NO_NAVSTART on a loaded machine: no score at all)
    is run once more; a score below the line is never retried.
    """
    out = ARTIFACTS / f"{name}.lighthouse.json"
    try:
        return (*lighthouse_run(procs, f"{name}-1", url, form_factor, cookies, chromium, out), "")
    except LighthouseError as exc:
        first = str(exc).strip().splitlines()[-1][:200]
    return (*lighthouse_run(procs, f"{name}-2", url, form_factor, cookies, chromium, out), f"retried after: {first}")


class LighthouseError(RuntimeError):
    """Lighthouse gave no report (not a low score)."""


def lighthouse_run(
    procs: Processes, name: str, url: str, form_factor: str, cookies: str, chromium: str, out: Path
) -> tuple[dict, dict]:
    """One Lighthouse run (its own Chromium and profile), started through `procs` so an interrupted run stops it too."""
    flags = [*CHROME_FLAGS, f"--user-data-dir={RUN_DIR / f'lighthouse-{name}'}"]
    argv = [
        "node",
        str(CACHE / "node_modules/lighthouse/cli/index.js"),
        url,
        "--quiet",
        "--output=json",
        f"--output-path={out}",
        "--disable-full-page-screenshot",
        f"--only-categories={','.join(THRESHOLDS)}",
        f"--chrome-flags={' '.join(flags)}",
        f"--extra-headers={json.dumps({'Cookie': cookies})}",
        *FORM_FACTORS[form_factor]["lighthouse"],
    ]
    process = procs.start(f"lighthouse-{name}", argv, env={**os.environ, "CHROME_PATH": chromium})
    try:
        code = process.popen.wait(timeout=180)
    except subprocess.TimeoutExpired:
        process.stop()
        code = "timeout"
    if code != 0:
        raise LighthouseError(f"Lighthouse exited {code}: {process.tail(10)}")
    report = json.loads(out.read_text())
    if report.get("runtimeError"):
        raise LighthouseError(f"Lighthouse: {report['runtimeError'].get('message')}")
    scores, failed = {}, {}
    for key, category in report["categories"].items():
        scores[key] = None if category["score"] is None else round(category["score"] * 100)
        failed[key] = [
            f"{ref['id']}: {report['audits'][ref['id']]['title']}"
            for ref in category["auditRefs"]
            if ref["weight"] > 0 and report["audits"][ref["id"]]["score"] is not None and report["audits"][ref["id"]]["score"] < 1
        ]
    return scores, failed


class Axe:
    """One Chromium driven by chromedriver; axe-core's own build injected into each page."""

    def __init__(self, chromium: str, chromedriver: str):
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in CHROME_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={RUN_DIR / 'axe-profile'}")
        options.add_experimental_option("prefs", {"intl.accept_languages": "pt-BR,pt"})
        self.driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
        self.driver.set_page_load_timeout(60)
        self.driver.set_script_timeout(60)
        self.source = (CACHE / "node_modules/axe-core/axe.min.js").read_text()

    def close(self) -> None:
        self.driver.quit()

    def violations(self, base: str, path: str, session: requests.Session, window: tuple[int, int]) -> list[dict]:
        self.driver.set_window_size(*window)
        self.driver.get(f"{base}/healthz")  # a page on the origin, to set its cookies
        self.driver.delete_all_cookies()
        for cookie in session.cookies:
            self.driver.add_cookie({"name": cookie.name, "value": cookie.value, "path": "/"})
        self.driver.get(base + path)
        self.driver.execute_script(self.source)
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations), e => done({error: String(e)}));"
        )
        if isinstance(result, dict) and "error" in result:
            raise RuntimeError(f"axe: {result['error']}")
        return [
            {
                "id": v["id"],
                "impact": v["impact"],
                "nodes": len(v["nodes"]),
                "help": v["help"],
                "targets": [n["target"] for n in v["nodes"]][:5],
            }
            for v in result
        ]


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------
def print_table(results: list[Result]) -> None:
    heads = ["page", "form", "perf", "a11y", "best-pr", "seo", "axe serious+", "axe other"]
    rows = []
    for r in results:
        serious = sum(1 for v in r.axe if v["impact"] in FAILING_IMPACTS)
        rows.append(
            [
                r.page.name,
                r.form_factor,
                *[str(r.scores.get(c, "–")) for c in ("performance", "accessibility", "best-practices", "seo")],
                str(serious),
                str(len(r.axe) - serious),
            ]
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(heads)]
    print("\n" + "  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)))
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    limits = ", ".join(f"{c} ≥ {n}" for c, n in THRESHOLDS.items() if n is not None)
    print(f"(fails below: {limits}; any axe violation of impact {' or '.join(FAILING_IMPACTS)}; performance printed only)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated page names (home, creator, plans, checkout, account)")
    parser.add_argument("--jobs", type=int, default=2, help="Lighthouse runs at once (default 2)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    RUN_DIR.mkdir(parents=True)
    ARTIFACTS.mkdir(parents=True)

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    procs = Processes(cwd=ROOT, log_dir=RUN_DIR)
    axe = pool = None
    results: list[Result] = []
    try:
        step(f"npm packages (Lighthouse, axe-core): {install_npm_packages()}", started)
        chromium, chromedriver = browser_binaries()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        start_site(procs, site_env(base), port, base)
        step(f"site up on {base} (migrate, load_demo, runserver)", started)
        visitor_session = visitor(base)
        listed, paid_plan = pages(base, visitor_session)
        sessions = {"visitor": visitor_session, "subscriber": subscriber(base, paid_plan)}
        step("a visitor past the 18+ gate; a subscriber who paid a PIX", started)
        wanted = {name for name in args.only.split(",") if name}
        results = [
            Result(page, form_factor) for page in listed if not wanted or page.name in wanted for form_factor in FORM_FACTORS
        ]
        # Lighthouse mostly waits (for load, for quiet): `--jobs` runs at once, while axe goes through the pages here.
        pool = ThreadPoolExecutor(max_workers=args.jobs)
        runs = {
            pool.submit(
                lighthouse, procs, r.name, base + r.page.path, r.form_factor, cookie_header(sessions[r.page.who]), chromium
            ): r
            for r in results
        }
        axe = Axe(chromium, chromedriver)
        for r in results:
            try:
                r.axe = axe.violations(base, r.page.path, sessions[r.page.who], FORM_FACTORS[r.form_factor]["window"])
                (ARTIFACTS / f"{r.name}.axe.json").write_text(json.dumps(r.axe, indent=1))
            except Exception as exc:  # noqa: BLE001 - one page's failure is reported, the others still run
                r.errors.append(f"axe: {type(exc).__name__}: {exc}")
        step(f"axe-core on {len(results)} pages", started)
        for future in as_completed(runs):
            r = runs[future]
            try:
                r.scores, r.failed_audits, r.note = future.result()
            except Exception as exc:  # noqa: BLE001 - as above
                r.errors.append(f"lighthouse: {type(exc).__name__}: {exc}")
                r.note = "no report"
            step(f"lighthouse {r.name}: {r.page.path}" + (f" ({r.note})" if r.note else ""), started)
    except KeyboardInterrupt as exc:
        print(f"interrupted ({exc}): stopping what was started")
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if axe is not None:
            axe.close()
        procs.stop_all()
    print_table(results)
    misses = {r.name: r.misses() for r in results}
    for name, found in misses.items():
        for miss in found:
            print(f"FAIL {name}: {miss}")
    summary = {
        "thresholds": THRESHOLDS,
        "failing_axe_impacts": FAILING_IMPACTS,
        "seconds": round(time.monotonic() - started, 1),
        "pages": [
            {
                "page": r.page.name,
                "path": r.page.path,
                "who": r.page.who,
                "form_factor": r.form_factor,
                "scores": r.scores,
                "failed_audits": r.failed_audits,
                "axe_violations": r.axe,
                "misses": r.misses(),
                "note": r.note,
            }
            for r in results
        ],
    }
    (ARTIFACTS / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1))
    ok = bool(results) and not any(misses.values())
    print(
        f"{'PASSED' if ok else 'FAILED'}: {len(results)} page audits in {summary['seconds']:.0f}s; {ARTIFACTS.relative_to(ROOT)}/summary.json"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
