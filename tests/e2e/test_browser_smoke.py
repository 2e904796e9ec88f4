"""Proves the browser launches: no project pages needed, just a data: URL."""

from urllib.parse import quote

BUTTON = """<button onclick="this.textContent='clicked'">go</button>"""


def test_chromium_launches_and_clicks(page, screenshot):
    page.goto("data:text/html," + quote(BUTTON))
    button = page.get_by_role("button")
    assert button.text_content() == "go"
    button.click()
    assert button.text_content() == "clicked"
    path = screenshot("browser-smoke")
    assert path.is_file()
    assert path.stat().st_size > 0
