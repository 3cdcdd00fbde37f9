from celery import Celery

from config.tasks import enqueue

RAN = []


def test_a_task_runs_in_process_when_the_broker_is_down():
    # given: a real (non-eager) Celery app whose broker is a closed port
    dead = Celery("dead-broker", broker="redis://127.0.0.1:1/0", set_as_current=False)
    dead.conf.broker_connection_timeout = 0.5

    @dead.task(name="tests.record")
    def record(value):
        RAN.append(value)
        return value

    RAN.clear()

    # when
    result = enqueue(record, value="kept")

    # then: the work was done, not lost
    assert RAN == ["kept"]
    assert result.get() == "kept"


def test_a_task_is_queued_when_the_broker_is_up(settings):
    from unittest import mock

    from celery import shared_task

    @shared_task(name="tests.noop")
    def noop():
        return None

    with mock.patch.object(noop, "apply_async") as apply_async, mock.patch.object(noop, "apply") as apply:
        enqueue(noop)

    apply_async.assert_called_once()
    apply.assert_not_called()
