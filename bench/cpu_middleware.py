"""
The server's own CPU per request, for bench/launch.py: a gunicorn sync worker
is one process serving one request at a time, so its CPU clock's difference
across a request is that request's CPU (view, middleware, template, ORM; not
PostgreSQL's, Redis's or nginx's). Each worker appends `route cpu_ms wall_ms ended_at`
lines to BENCH_CPU_LOG_DIR/<pid>.log. Enabled by bench/settings.py only when
that variable is set.
"""

import os
import time
from pathlib import Path

from django.urls import Resolver404, resolve


class RequestCpuMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.out = None

    def __call__(self, request):
        cpu, wall = time.process_time(), time.perf_counter()
        response = self.get_response(request)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        try:
            route = resolve(request.path_info).route or request.path_info
        except Resolver404:
            route = "404"
        if self.out is None:
            self.out = (Path(os.environ["BENCH_CPU_LOG_DIR"]) / f"{os.getpid()}.log").open("a", buffering=1)
        self.out.write(f"{route.replace(' ', '_')} {cpu * 1000:.2f} {wall * 1000:.2f} {time.time():.3f}\n")
        return response
