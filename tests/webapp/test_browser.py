"""A real Chromium (Debian's /usr/bin/chromium, driven by Playwright's bundled driver) uses the page
served by gunicorn against the stand-in: drops a held-out digit on the page, sees the class and bars."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.support.paths import TEST_OUTPUT_DIR
from tests.webapp.webtest_support import Digit, gunicorn_server, require_digits

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
OUTPUT_DIR = TEST_OUTPUT_DIR / "webapp"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # runs as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Drops the file the way a user's drag-and-drop does: a DataTransfer on a `drop` event, so the page's
# own JavaScript has to move it into the form.
DROP_FILE_JS = """([zoneSelector, b64, name]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type: "image/png" }));
  const zone = document.querySelector(zoneSelector);
  for (const type of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }
  return document.getElementById("image-input").files.length;
}"""


def correctly_classified(rest_url: str, digits: list[Digit], label: int) -> Digit:
    """A held-out digit with this label that the served model gets right: the test is about the page,
    not about the model's few mistakes."""
    for digit in digits:
        if digit.label != label:
            continue
        answer = requests.post(
            f"{rest_url}/v1/models/digits:predict",
            json={"instances": [{"b64": base64.b64encode(digit.png).decode()}]},
            timeout=30,
        ).json()["predictions"][0]
        if answer["class_id"] == label:
            return digit
    raise AssertionError(f"the served model gets no held-out {label} right")


@pytest.fixture
def browser_context(tmp_path: Path):
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: run `make host-packages`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # A fresh profile per test: no state from earlier runs, no first-run or sync traffic.
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1100, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


@dataclass
class PageTrouble:
    """What went wrong on the page: console errors, page errors, failed requests, answers >= 400."""

    problems: list[str] = field(default_factory=list)
    failed_responses: list[str] = field(default_factory=list)

    def watch(self, page) -> None:
        page.on("console", lambda message: message.type == "error" and self.problems.append(message.text))
        page.on("pageerror", lambda error: self.problems.append(str(error)))
        page.on("requestfailed", lambda request: self.problems.append(f"failed: {request.url}"))
        page.on(
            "response",
            lambda response: response.status >= 400
            and self.failed_responses.append(f"{response.request.method} {response.url} {response.status}"),
        )


def classify_in_the_form(page) -> None:
    """Press Classify and wait for the page the server answers with."""
    with page.expect_navigation():
        page.click("#classify-button")


def open_the_page(page, url: str) -> None:
    page.goto(f"{url}/")
    assert page.title().startswith("Image classifier")
    # The stylesheet is applied (no build step, served by Flask).
    button_colour = page.eval_on_selector(".button", "b => getComputedStyle(b).backgroundColor")
    assert button_colour == "rgb(37, 99, 235)"


def drop_and_classify(page, dropped: Digit) -> None:
    """1. Drag and drop, then the Classify button."""
    dropped_b64 = base64.b64encode(dropped.png).decode()
    files_in_form = page.evaluate(DROP_FILE_JS, ["#dropzone", dropped_b64, "7.png"])
    assert files_in_form == 1
    assert page.is_visible("#dropzone-preview")
    classify_in_the_form(page)
    assert page.inner_text("#predicted-class").strip() == "7"
    bars = page.locator("#top-classes .bar")
    assert bars.count() == 5
    widths = [box["width"] for box in (bars.nth(i).bounding_box() for i in range(5))]
    assert widths == sorted(widths, reverse=True) and widths[0] > 2 * widths[1]
    labels = page.locator("#top-classes .bar-label").all_inner_texts()
    assert labels[0] == "7"
    assert page.inner_text("#result-model") == "digits"
    assert page.inner_text("#result-version").isdigit()
    assert page.inner_text("#result-latency").endswith("ms")
    page.screenshot(path=str(OUTPUT_DIR / "result-after-drop.png"), full_page=True)


def pick_and_classify(page, chosen_file: Path) -> None:
    """2. The file picker (the form without drag and drop)."""
    page.set_input_files("#image-input", str(chosen_file))
    classify_in_the_form(page)
    assert page.inner_text("#predicted-class").strip() == "3"
    # Both predictions are listed, newest first, with thumbnails that loaded.
    assert page.locator("#recent-list .recent-class").all_inner_texts() == ["3", "7"]
    thumbnails_loaded = page.eval_on_selector_all(
        "#recent-list img", "images => images.map(i => i.complete && i.naturalWidth > 0)"
    )
    assert thumbnails_loaded == [True, True]
    page.screenshot(path=str(OUTPUT_DIR / "result-with-recent.png"), full_page=True)


def upload_a_bad_file(page, bad_file: Path) -> None:
    """3. A bad file shows the error on the page, not a browser error page."""
    bad_file.write_text("not an image at all")
    page.set_input_files("#image-input", str(bad_file))
    classify_in_the_form(page)
    assert "not an image" in page.inner_text("#error")
    page.screenshot(path=str(OUTPUT_DIR / "bad-upload.png"), full_page=True)


def test_drop_a_digit_on_the_page_and_see_the_class_and_bars(
    tfserving, digits: list[Digit], browser_context, tmp_path: Path
) -> None:
    require_digits(tfserving)
    dropped = correctly_classified(tfserving.rest_url, digits, label=7)
    chosen = correctly_classified(tfserving.rest_url, digits, label=3)
    chosen_file = tmp_path / "three.png"
    chosen_file.write_bytes(chosen.png)
    env = {"TFWEB_TFSERVING_REST_URL": tfserving.rest_url, "TFWEB_INSTANCE_PATH": str(tmp_path / "state")}
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)

    with gunicorn_server(env, tmp_path / "gunicorn.log", workers=1) as server:
        page = browser_context.new_page()
        trouble = PageTrouble()
        trouble.watch(page)
        open_the_page(page, server.url)
        drop_and_classify(page, dropped)
        pick_and_classify(page, chosen_file)
        upload_a_bad_file(page, tmp_path / "notes.png")
        # The only failed response is the bad upload's 400 (which Chromium also logs to the console).
        assert trouble.failed_responses == [f"POST {server.url}/ 400"], trouble.failed_responses
        assert all("status of 400" in problem for problem in trouble.problems), trouble.problems
    print(f"\nscreenshots in {OUTPUT_DIR}: {', '.join(sorted(p.name for p in OUTPUT_DIR.glob('*.png')))}")
