"""The demo page in a real headless browser: the operating system's Chromium driven by Selenium (nothing downloaded).

The page of a tiny segmenter is served on a free local port; the head CT of pydicom-data is uploaded, the overlay
and the per-class table must appear, then a corrupt file must show the command's one-line error. Without Chromium and
its driver (`apt-get install chromium chromium-driver`, which `.ci/run` does as root) the test is skipped, saying so.

The screenshot goes to the test's temporary folder, so a test run never writes into the checkout. The README's picture
is the same test run on the trained demo segmenter with two variables set:
`VIS_MAE_DEMO_MODEL=outputs/vis-mae-finetune-segmentation VIS_MAE_DEMO_SCREENSHOT=docs/images/demo.png`.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from test_demo import save_segmenter

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("no Chromium and chromedriver installed (apt-get install chromium chromium-driver)",
                allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the test extra)")
pytest.importorskip("gradio", reason="the app extra (Gradio) is not installed")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from vis_mae_hf.app.demo.page import build_page  # noqa: E402
from vis_mae_hf.app.demo.views import DemoModel  # noqa: E402

MODEL = os.environ.get("VIS_MAE_DEMO_MODEL")  # a saved segmenter with the demo's tissue labels; default a tiny one
SCREENSHOT = os.environ.get("VIS_MAE_DEMO_SCREENSHOT")  # where the screenshot goes; default the test's tmp_path
WAIT_S = 45


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def page_url(tmp_path):
    model = MODEL or save_segmenter(tmp_path / "tiny-random-segmenter")
    page = build_page(DemoModel.load(model, device="cpu"))
    port = free_port()
    page.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, share=False)
    yield f"http://127.0.0.1:{port}/"
    page.close()


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


def upload(browser, path: Path) -> None:
    browser.find_element(By.CSS_SELECTOR, "#demo-upload input[type=file]").send_keys(str(path))


def text_of(browser, selector: str) -> str:
    found = browser.find_elements(By.CSS_SELECTOR, selector)
    return found[0].text if found else ""


def test_upload_the_head_ct_see_overlay_and_table_then_a_corrupt_file_shows_the_error(page_url, browser, tmp_path):
    browser.get(page_url)
    wait = WebDriverWait(browser, WAIT_S)
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#demo-upload input[type=file]"))
    assert "not a medical device" in text_of(browser, "#demo-notice")

    upload(browser, Path(get_testdata_file("693_UNCR.dcm", download=False)))
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#demo-picture img"))
    wait.until(lambda b: "white matter" in text_of(b, "#demo-table"))
    assert "area on slice" in text_of(browser, "#demo-table")
    assert "693_UNCR.dcm" in text_of(browser, "#demo-message")
    screenshot = Path(SCREENSHOT) if SCREENSHOT else tmp_path / "demo.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(screenshot)) and screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    corrupt = tmp_path / "corrupt.dcm"
    corrupt.write_bytes(Path(get_testdata_file("693_UNCR.dcm", download=False)).read_bytes()[:2000])
    clear = browser.find_elements(By.CSS_SELECTOR, "#demo-upload button[aria-label='Clear']")
    if clear:
        clear[0].click()
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#demo-upload input[type=file]"))
    upload(browser, corrupt)
    wait.until(lambda b: "vis-mae demo: error:" in text_of(b, "#demo-message"))
    message = text_of(browser, "#demo-message")
    assert "corrupt.dcm" in message and "Traceback" not in message and len(message.splitlines()) == 1
