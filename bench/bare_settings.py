"""The product's settings, unchanged but for the URLconf: the bare-Django reference server."""

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bare_app"
