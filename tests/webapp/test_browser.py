"""A real Chromium (Debian's /usr/bin/chromium, driven by Playwright's bundled driver) uses the page
served by gunicorn against the stand-in: drops a held-out digit on the page, sees the class and bars;
two visitors see only their own predictions; a digit drawn on the pad is classified; a page of
another origin cannot post the form. Any Content-Security-Policy violation is a console error."""

from __future__ import annotations

import base64
import http.server
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.support.file_server import serving_folder
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
            lambda response: (
                response.status >= 400
                and self.failed_responses.append(
                    f"{response.request.method} {response.url} {response.status}"
                )
            ),
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
    # Visible once the browser has decoded the dropped image (it has no size before): waited for, as
    # that takes longer on a busy machine. Raises when it never shows.
    page.wait_for_selector("#dropzone-preview", state="visible", timeout=10_000)
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


# Strokes of a "7" on the 192 x 192 pad, in pad pixels: the bar, then the stem.
SEVEN_STROKES = [[(40, 40), (150, 40)], [(150, 40), (120, 100), (90, 165)]]

# One stroke as a finger draws it: pointer events of type "touch".
TOUCH_STROKE_JS = """([points]) => {
  const pad = document.getElementById("pad");
  const box = pad.getBoundingClientRect();
  const scale = box.width / pad.width;
  const at = ([x, y]) => ({ clientX: box.left + x * scale, clientY: box.top + y * scale });
  const options = { pointerId: 7, pointerType: "touch", isPrimary: true, bubbles: true, cancelable: true };
  pad.dispatchEvent(new PointerEvent("pointerdown", { ...options, ...at(points[0]) }));
  for (const point of points.slice(1)) {
    pad.dispatchEvent(new PointerEvent("pointermove", { ...options, ...at(point) }));
  }
  pad.dispatchEvent(new PointerEvent("pointerup", { ...options, ...at(points[points.length - 1]) }));
}"""


@pytest.fixture
def browser():
    """One Chromium; each test makes its own contexts (visitors: separate cookies)."""
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: run `make host-packages`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def recent_classes(page) -> list[str]:
    return page.locator("#recent-list .recent-class").all_inner_texts()


def draw_strokes(page, strokes: list[list[tuple[int, int]]]) -> None:
    """Mouse strokes on the pad, each pressed, moved point to point in small steps, released."""
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 192
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=8)
        page.mouse.up()


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def other_origin_site(folder: Path, target: str) -> Iterator[str]:
    """A page on another origin (another loopback port) with a form that posts to `target`."""
    folder.mkdir()
    (folder / "form.html").write_text(
        f'<!doctype html><form method="post" action="{target}" enctype="multipart/form-data">'
        '<input type="hidden" name="model" value="digits"><button id="go">go</button></form>'
    )
    with serving_folder(folder, QuietFiles) as url:
        yield f"{url}/form.html"


def test_two_visitors_each_see_their_own_predictions_draw_a_digit_and_no_other_site_posts(
    tfserving, digits: list[Digit], browser, tmp_path: Path
) -> None:
    require_digits(tfserving)
    seven = correctly_classified(tfserving.rest_url, digits, label=7)
    three_file = tmp_path / "three.png"
    three_file.write_bytes(correctly_classified(tfserving.rest_url, digits, label=3).png)
    env = {"TFWEB_TFSERVING_REST_URL": tfserving.rest_url, "TFWEB_INSTANCE_PATH": str(tmp_path / "state")}
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)

    with gunicorn_server(env, tmp_path / "gunicorn.log", workers=2) as server:
        alice_context, bob_context = browser.new_context(), browser.new_context()
        alice, bob = alice_context.new_page(), bob_context.new_page()
        trouble = PageTrouble()
        trouble.watch(alice)
        trouble.watch(bob)
        first = alice.goto(f"{server.url}/")
        assert "frame-ancestors 'none'" in first.headers["content-security-policy"]
        assert first.headers["x-content-type-options"] == "nosniff"
        drop_and_classify(alice, seven)
        assert recent_classes(alice) == ["7"]

        open_the_page(bob, server.url)
        assert recent_classes(bob) == []
        bob.set_input_files("#image-input", str(three_file))
        classify_in_the_form(bob)
        assert recent_classes(bob) == ["3"]
        alice.goto(f"{server.url}/")
        assert recent_classes(alice) == ["7"]
        alices_image = alice.eval_on_selector("#recent-list img", "image => image.src")
        assert bob.request.get(alices_image).status == 404
        alice.screenshot(path=str(OUTPUT_DIR / "visitor-a.png"), full_page=True)
        bob.screenshot(path=str(OUTPUT_DIR / "visitor-b.png"), full_page=True)

        # Draw a 7 stroke by stroke with the mouse, one more stroke by touch, and classify it.
        bob.click("#pad-clear")
        draw_strokes(bob, SEVEN_STROKES)
        bob.evaluate(TOUCH_STROKE_JS, [[(100, 105), (140, 105)]])
        with bob.expect_response(f"{server.url}/api/predict") as drawn:
            bob.click("#pad-classify")
        assert drawn.value.status == 200
        drawn_class = bob.inner_text("#pad-class").strip()
        assert drawn_class == "7"
        bob.locator("#draw").screenshot(path=str(OUTPUT_DIR / "drawn-digit.png"))
        # Drawings go through the stateless JSON API: not listed as Bob's.
        bob.goto(f"{server.url}/")
        assert recent_classes(bob) == ["3"]

        # A page of another origin cannot post the form.
        with other_origin_site(tmp_path / "other-site", f"{server.url}/") as form_url:
            bob.goto(form_url)
            with bob.expect_navigation() as refused:
                bob.click("#go")
            assert refused.value.status == 403
            bob.screenshot(path=str(OUTPUT_DIR / "cross-site-post-refused.png"), full_page=True)
        # The only failed response is the other site's post; the console has no policy violation,
        # only that 403 and the favicons the browser asks the 403 page and the other site for.
        assert trouble.failed_responses == [f"POST {server.url}/ 403"], trouble.failed_responses
        expected = ("status of 403", "status of 404")
        assert all(
            problem.endswith(")") and any(e in problem for e in expected) for problem in trouble.problems
        ), trouble.problems
        alice_context.close()
        bob_context.close()
    print(f"\nthe drawn 7 was classified as {drawn_class}")
