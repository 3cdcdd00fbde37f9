"""
gunicorn's settings for the production shape (Dockerfile, docker-compose.yml, the rehearsal, the drill):
`gunicorn -c config/gunicorn_conf.py config.wsgi:application --bind ... --workers N`.

- The access log never shows a query string: the postback URL carries its token there (`?token=`),
  and checkout links their campaign parameters. Each line ends with the request's id
  (config/request_id.py), the one the site's own log lines carry.
- prometheus-client's multiprocess mode (config/metrics.py): when `PROMETHEUS_MULTIPROC_DIR` is set,
  the master empties it at start (counters of a previous run must not add up with this one's) and
  marks a worker's files dead when it exits.
"""

import os
import shutil
from pathlib import Path

from prometheus_client import multiprocess

accesslog = "-"
# %(U)s is the path without its query string; %(M)s the time taken in milliseconds.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s" rid=%({x-request-id}o)s'
timeout = 60


def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
