"""Settings for bench/api.py: the production settings with the floor view's URLs."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"
