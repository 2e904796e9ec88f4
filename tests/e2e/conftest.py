"""Browser fixtures for the end-to-end tests in tests/e2e.

Playwright drives the system Chromium (``$CHROMIUM``, else /usr/bin/chromium, else
``chromium`` on PATH); Playwright's own browser download is never used. Run
``make browser`` to install Chromium.

With pytest-playwright installed, its standard fixtures (``playwright``, ``browser``,
``context``, ``page``, ``--headed``, ``--slowmo``, ``--tracing`` ...) are used and only
``browser_type_launch_args`` is overridden here. Without it, minimal fixtures with
the same names are provided, so ``page`` works either way.

Every test in this folder is marked ``e2e`` (``pytest -m "not e2e"`` skips them).
"""

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

# Playwright's sync API runs an asyncio event loop in the test's (main) thread, in a
# greenlet. Django sees that running loop and raises SynchronousOnlyOperation for any
# ORM call made from the test body (creating data, checking results), although the
# test code itself is synchronous. pytest-django's live_server handles requests in
# its own thread and is not affected. Allow sync ORM access for the test process.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

E2E_DIR = Path(__file__).resolve().parent

# Flags for Chromium on a closed network (no update checks, sync, QUIC or GPU).
CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-gpu",
    "--disable-quic",
    "--disable-sync",
]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items; mark only the ones in this folder.
    # tryfirst: markers must be in place before `-m` deselection runs.
    for item in items:
        if item.path.resolve().is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)


def pytest_configure(config: pytest.Config) -> None:
    # pytest-playwright 0.10's own base_url fixture trips a pytest 9 deprecation
    # warning on every e2e run; it is upstream's to fix, so hide just that one.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:Session-scoped fixtures defined as instance methods are deprecated"
        r"\.\s+Instance attributes set in the 'base_url':pytest.PytestRemovedIn10Warning",
    )
    # pytest-playwright registers itself as "playwright". When it is not installed
    # (or disabled with -p no:playwright), provide the fixtures the tests rely on.
    if not config.pluginmanager.has_plugin("playwright"):
        config.pluginmanager.register(_playwright_fallback(), "e2e-playwright-fallback")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return explicit
        pytest.fail(
            f"CHROMIUM={explicit} is not an executable file. "
            "Fix or unset it, or run `make browser` to install Chromium.",
            pytrace=False,
        )
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "Chromium not found (checked $CHROMIUM, /usr/bin/chromium and `chromium` on PATH). "
        "Run `make browser` to install it, or set CHROMIUM=/path/to/chromium.",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def browser_type_launch_args(pytestconfig: pytest.Config, chromium_path: str) -> dict[str, Any]:
    """Overrides pytest-playwright's fixture: launch the system Chromium."""
    args = list(CHROMIUM_ARGS)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to start as root with its sandbox.
    launch_args: dict[str, Any] = {"executable_path": chromium_path, "args": args}
    # Keep pytest-playwright's command-line switches working.
    if pytestconfig.getoption("--headed", default=False):
        launch_args["headless"] = False
    slowmo = pytestconfig.getoption("--slowmo", default=0)
    if slowmo:
        launch_args["slow_mo"] = slowmo
    return launch_args


@pytest.fixture
def screenshot(
    page: Any, pytestconfig: pytest.Config, request: pytest.FixtureRequest
) -> Callable[..., Path]:
    """``screenshot("name")`` saves a full-page PNG to test-output/screenshots/name.png.

    Without a name the test's name is used. Returns the file's path.
    """
    folder = pytestconfig.rootpath / "test-output" / "screenshots"

    def take(name: str | None = None) -> Path:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name or request.node.name).strip("-.")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{slug or 'screenshot'}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def _playwright_fallback() -> ModuleType:
    """The subset of pytest-playwright's fixtures the e2e tests use, as a plugin.

    Built inside a function so that pytest does not pick them up as fixtures of this
    conftest (which would shadow pytest-playwright's when it is installed).
    """

    @pytest.fixture(scope="session", name="playwright")
    def playwright_() -> Iterator[Any]:
        from playwright.sync_api import sync_playwright

        pw = sync_playwright().start()
        yield pw
        pw.stop()

    @pytest.fixture(scope="session", name="browser")
    def browser_(playwright: Any, browser_type_launch_args: dict[str, Any]) -> Iterator[Any]:
        browser = playwright.chromium.launch(**browser_type_launch_args)
        yield browser
        browser.close()

    @pytest.fixture(scope="session", name="browser_context_args")
    def browser_context_args_() -> dict[str, Any]:
        return {}

    @pytest.fixture(name="context")
    def context_(browser: Any, browser_context_args: dict[str, Any]) -> Iterator[Any]:
        context = browser.new_context(**browser_context_args)
        yield context
        context.close()

    @pytest.fixture(name="page")
    def page_(context: Any) -> Any:
        return context.new_page()

    plugin = ModuleType("e2e_playwright_fallback")
    for fixture in (playwright_, browser_, browser_context_args_, context_, page_):
        setattr(plugin, fixture.__name__, fixture)
    return plugin
