"""Settings for bench/api.py: the production settings with the floor view's URLs."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"

# bench/launch.py: every request's CPU in the worker, by route (bench/cpu_middleware.py).
if env.str("BENCH_CPU_LOG_DIR", default=""):  # noqa: F405
    MIDDLEWARE = ["bench.cpu_middleware.RequestCpuMiddleware", *MIDDLEWARE]  # noqa: F405
