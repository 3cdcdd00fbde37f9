import pytest


@pytest.fixture(autouse=True)
def _celery_in_process():
    """Billing tests check the e-mails tasks send, so tasks run in-process even when REDIS_URL is set."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
