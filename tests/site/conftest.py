"""Fixtures for the site's page and browser tests."""

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings as django_settings


@pytest.fixture(autouse=True)
def _tasks_run_in_process():
    # The journeys' e-mails (set-password, renewal notices) are Celery tasks: with
    # REDIS_URL set they would wait for a worker that these tests do not start.
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def catalog_storage(settings):
    """White-label media signed for a fake bucket, so unlocked posts get URLs without a network."""
    settings.WHITELABEL_BUCKET = "wl-bucket"
    settings.AWS_ACCESS_KEY_ID = "AKIDEXAMPLE"
    settings.AWS_SECRET_ACCESS_KEY = "secret-example"
    settings.AWS_S3_ENDPOINT_URL = "http://s3.test"
    settings.AWS_S3_REGION_NAME = "us-east-1"
    return settings


@pytest.fixture
def make_creator(db):
    from catalog.models import Creator

    counter = iter(range(1, 10_000))

    def make(**fields):
        n = next(counter)
        fields.setdefault("name", f"Criadora {n}")
        fields.setdefault("slug", f"criadora-{n}")
        return Creator.objects.create(**fields)

    return make


@pytest.fixture
def make_post(db):
    """A published post with `images` image media and `videos` video media (white-label keys)."""
    from catalog.models import Media, Post

    counter = iter(range(1, 100_000))

    def make(creator, *, images=2, videos=0, **fields):
        n = next(counter)
        fields.setdefault("title", f"Post {n}")
        post = Post.objects.create(creator=creator, **fields)
        media = [Media(post=post, type="image", position=i, key=f"{creator.slug}/{n}/img{i}.jpg") for i in range(images)]
        media += [
            Media(post=post, type="video", position=images + i, key=f"{creator.slug}/{n}/clip{i}.mp4") for i in range(videos)
        ]
        Media.objects.bulk_create(media)
        type(creator).objects.filter(pk=creator.pk).update(post_count=creator.posts.filter(status="published").count())
        creator.refresh_from_db()
        return post

    return make


@pytest.fixture
def live_media(settings, live_server):
    """
    Presigned media URLs that the browser can load: the "bucket" is the live
    server's /static/ and every image key the placeholder picture, spelt
    uniquely with "./" segments the browser collapses before asking.
    """
    settings.WHITELABEL_BUCKET = "static"
    settings.AWS_ACCESS_KEY_ID = "AKIDEXAMPLE"
    settings.AWS_SECRET_ACCESS_KEY = "secret-example"
    settings.AWS_S3_ENDPOINT_URL = live_server.url
    settings.AWS_S3_REGION_NAME = "us-east-1"

    def point_media_at_placeholder():
        from catalog.models import Media

        for n, media in enumerate(Media.objects.order_by("pk")):
            media.key = "img/" + "./" * (n + 1) + "placeholder.svg" if media.type == "image" else f"missing/{n}.mp4"
            media.save(update_fields=["key"])

    return point_media_at_placeholder


@pytest.fixture
def subscriber(db):
    from tests.factories import SubscriptionFactory

    return SubscriptionFactory().user


# ---------------------------------------------------------------------------
# Browser tests: Debian's chromium + chromedriver, headless
# ---------------------------------------------------------------------------
SCREENSHOTS = Path(django_settings.BASE_DIR) / "artifacts" / "screenshots"
IS_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROME_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--lang=pt-BR",
]


def _find(*names):
    for name in names:
        path = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
        if path:
            return path
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Lets the browser fixture know whether the test failed, to keep a screenshot of it.
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def _start_chromium(tmp_path, width, height):
    chromium = _find("chromium", "chromium-browser")
    driver_path = _find("chromedriver")
    if not chromium or not driver_path:
        reason = "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        if IS_CI:
            pytest.fail(f"browser tests cannot run under CI=true: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.add_argument(f"--window-size={width},{height}")
    options.add_experimental_option("prefs", {"intl.accept_languages": "pt-BR,pt"})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    return driver


class Browser:
    """The driver plus the live server's URL and small helpers the journeys share."""

    def __init__(self, driver, base_url, name):
        self.driver = driver
        self.base_url = base_url.rstrip("/")
        self.name = name

    def get(self, path):
        self.driver.get(self.base_url + path)

    def find(self, css):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait_for(self, css, *, timeout=10, visible=True):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        condition = ec.visibility_of_element_located if visible else ec.presence_of_element_located
        return WebDriverWait(self.driver, timeout).until(condition((By.CSS_SELECTOR, css)))

    def wait_until(self, predicate, *, timeout=10, message=""):
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(lambda d: predicate(), message)

    def emulate_phone(self, width=390, height=844):
        """A phone's viewport in CSS pixels, as Chrome's device mode sets it (a window size leaves the browser's own bars in)."""
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": True}
        )

    def in_viewport(self, css):
        """Whether the element is wholly on screen, read from getBoundingClientRect."""
        return self.driver.execute_script(
            "var r = document.querySelector(arguments[0]).getBoundingClientRect();"
            "return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= window.innerHeight && r.right <= window.innerWidth;",
            css,
        )

    def resize(self, width, height=900):
        self.driver.set_window_size(width, height)

    def screenshot(self, label):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.name}-{label}.png"
        self.driver.save_screenshot(str(path))
        return path

    def full_screenshot(self, label, width):
        """The whole page at `width` (headless Chromium sizes the window to the document)."""
        height = self.driver.execute_script("return Math.max(document.body.scrollHeight, 600)")
        self.resize(width, min(height, 4000))
        return self.screenshot(label)

    def js_errors(self):
        return [entry for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]

    @property
    def text(self):
        return self.find("body").text


@pytest.fixture
def browser(request, live_server, settings, tmp_path):
    # The live server speaks plain HTTP: cookies cannot be Secure-only here.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.SECURE_SSL_REDIRECT = False
    driver = _start_chromium(tmp_path, 1280, 900)
    name = request.node.name.replace("/", "_")
    browser = Browser(driver, live_server.url, name)
    try:
        yield browser
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            try:
                browser.screenshot("failure")
            except Exception:  # noqa: BLE001 - a broken session must not hide the test's own error
                pass
        driver.quit()


PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's password


def log_in(browser, email, password=PASSWORD, *, path="/accounts/login/"):
    browser.get(path)
    browser.find("input[name=username]").send_keys(email)
    browser.find("input[name=password]").send_keys(password)
    browser.find("main form button[type=submit], main form input[type=submit]").click()
    browser.wait_until(lambda: "/login/" not in browser.driver.current_url, message="login did not redirect")
