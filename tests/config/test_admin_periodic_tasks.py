"""django-celery-beat's admin pages (contract §5's periodic tasks) read in pt-BR: locale/third_party."""

import pytest
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, PeriodicTask

pytestmark = pytest.mark.django_db


def test_a_periodic_task_page_reads_in_pt_br(admin_client):
    crontab = CrontabSchedule.objects.create(minute="0", hour="5")
    task = PeriodicTask.objects.create(name="Nightly check", task="billing.tasks.audit_money", crontab=crontab)

    page = admin_client.get(reverse("admin:django_celery_beat_periodictask_change", args=[task.pk]), HTTP_ACCEPT_LANGUAGE="pt-BR")
    html = page.content.decode()

    assert "Tarefa (registrada)" in html and "Agendamento por extenso" in html and "Agendamento cron" in html
    assert "Task (registered)" not in html and "Crontab translation" not in html and "Crontab Schedule" not in html
