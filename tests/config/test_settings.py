import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args, env_overrides: dict, drop: tuple = ()) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PYTEST")}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_it_refuses_to_start_without_secret_key_when_debug_is_off():
    result = _manage("check", env_overrides={"DEBUG": "false"}, drop=("SECRET_KEY",))

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_it_refuses_to_start_without_field_encryption_key_in_production():
    result = _manage("check", env_overrides={"DEBUG": "false", "SECRET_KEY": "x" * 60}, drop=("FIELD_ENCRYPTION_KEY",))

    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_deploy_is_clean_with_production_settings():
    from cryptography.fernet import Fernet

    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env_overrides={
            "DEBUG": "false",
            "SECRET_KEY": "a-long-random-production-secret-" + "k" * 40,
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "creatorflix.example",
            # Who sells: billing.W001 warns while any is unset.
            "SELLER_NAME": "CreatorFlix Conteúdo Digital Ltda.",
            "SELLER_DOCUMENT": "12.345.678/0001-90",
            "SELLER_ADDRESS": "Av. Paulista, 1000, São Paulo - SP",
            "SUPPORT_EMAIL": "suporte@creatorflix.example",
        },
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_are_safe_by_default(settings):
    # The module under test is the real one; DEBUG defaults to off.
    assert settings.SESSION_COOKIE_HTTPONLY
    assert settings.SECURE_CONTENT_TYPE_NOSNIFF
    assert settings.LANGUAGE_CODE == "pt-br"
    assert settings.TIME_ZONE == "America/Sao_Paulo"
    assert settings.USE_TZ


def test_passwords_are_hashed_with_argon2():
    from django.conf import settings as django_settings

    # The autouse fixture swaps hashers per test; the module's own list starts with Argon2.
    import config.settings as module

    assert module.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")
    assert django_settings.AUTH_USER_MODEL == "accounts.User"


@pytest.mark.parametrize("secret", ["Basic c2tfbGl2ZV8xMjM6eA==", "secret_key=sk_live_123"])
def test_log_lines_never_carry_secrets(secret):
    import logging

    from config.logging import JsonFormatter, RedactSecretsFilter

    record = logging.makeLogRecord({"msg": "calling gateway authorization: %s cpf 529.982.247-25", "args": (secret,)})
    RedactSecretsFilter().filter(record)
    line = JsonFormatter().format(record)

    assert "c2tfbGl2ZV8xMjM6eA" not in line
    assert "sk_live_123" not in line
    assert "529.982.247-25" not in line


def test_an_object_in_a_log_line_is_redacted_once_rendered():
    """django.request logs the request object, whose rendering carries the postback's ?token=."""
    import logging

    from config.logging import JsonFormatter, RedactSecretsFilter

    class Request:
        def __str__(self):
            return "<WSGIRequest: POST '/api/webhook/junglepay?token=pbk_secret_123'>"

    record = logging.makeLogRecord({"msg": "Unauthorized", "request": Request()})
    RedactSecretsFilter().filter(record)

    assert "pbk_secret_123" not in JsonFormatter().format(record)


# A task's run before it acknowledges its message: well above what the tasks take (bench/outbound.py,
# bench/sweep.py: seconds), and what is left of the visibility timeout after the longest retry wait.
TASK_RUN_ALLOWANCE = 60


def _longest_retry_wait(task) -> int:
    """Celery's longest countdown before a task's next try: retry_backoff doubles per try (the
    `retries`-th waits backoff × 2**retries) up to retry_backoff_max (600 when unset)."""
    if not task.retry_backoff:
        return task.default_retry_delay
    backoff = 1 if task.retry_backoff is True else task.retry_backoff
    return min(getattr(task, "retry_backoff_max", 600), backoff * 2 ** (task.max_retries - 1))


def test_a_waiting_retry_never_outlives_the_visibility_timeout_and_a_dead_workers_tasks_come_back_soon():
    """With acks_late, a killed worker's messages return after the visibility timeout (kombu's default,
    an hour, left e-mails stuck); a retry waiting for its countdown is unacked too, so every task's
    longest wait plus its run must stay below it, or the retry is delivered twice."""
    from django.conf import settings

    from config.celery import app

    app.loader.import_default_modules()
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    retrying = {name: task for name, task in app.tasks.items() if getattr(task, "autoretry_for", ())}

    assert visibility <= 15 * 60
    assert {"accounts.tasks.send_set_password_email", "billing.tasks.send_renewal_notices"} <= set(retrying)
    for name, task in retrying.items():
        assert _longest_retry_wait(task) + TASK_RUN_ALLOWANCE <= visibility, name
    assert visibility >= settings.TASK_RETRY_WAIT_MAX + TASK_RUN_ALLOWANCE


def test_an_email_service_is_configured_from_the_environment_through_anymail():
    script = (
        "from django.conf import settings; from django.core.mail import get_connection; c = get_connection(); "
        "print(sorted(settings.ANYMAIL), type(c).__module__, c.api_key, c.sender_domain)"
    )
    result = _manage(
        "shell", "-c", script,
        env_overrides={
            "DEBUG": "true",
            "EMAIL_BACKEND": "anymail.backends.mailgun.EmailBackend",
            "ANYMAIL_API_KEY": "key-123",
            "ANYMAIL_SENDER_DOMAIN": "mg.creatorflix.example",
        },
    )

    assert result.returncode == 0, result.stderr
    last_line = result.stdout.strip().splitlines()[-1]
    assert last_line == "['MAILGUN_API_KEY', 'MAILGUN_SENDER_DOMAIN'] anymail.backends.mailgun key-123 mg.creatorflix.example"
