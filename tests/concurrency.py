"""Run callables in real threads, released at the same instant: the races our row locks exist for."""

import threading

from django.db import connection


def race(*calls, timeout: float = 60) -> list[Exception]:
    """
    Start one thread per call, hold them at a barrier, release them together,
    wait for all. Each thread uses (and closes) its own database connection.
    Returns the exceptions raised, so the test asserts on them.
    """
    barrier = threading.Barrier(len(calls))
    errors: list[Exception] = []

    def run(call):
        try:
            barrier.wait(timeout=20)
            call()
        except Exception as exc:  # noqa: BLE001 - handed back to the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return errors
