"""Swagger UI at /docs in a real browser (Debian's chromium and chromedriver, headless) with
every host but this machine unreachable: the page renders, loads nothing from elsewhere,
and its Authorize button sends the bearer token with "Try it out"."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.storage.sqlite import SqliteStore
from tests.access.test_dmp_scenario import _patient
from tests.live_app import Live, live_app

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)
WAIT_S = 30
READ_OP = "operations-default-read_route_fhir__rtype___id__get"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    yield from live_app(tmp_path, SqliteStore(tmp_path / "store.sqlite3"), "dev")


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium fetches no driver or browser
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # tests run as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1400",
        # as on a hospital network: no name but this machine resolves
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _requested(driver: Any) -> set[str]:
    messages = (json.loads(e["message"])["message"] for e in driver.get_log("performance"))
    return {
        m["params"]["request"]["url"]
        for m in messages
        if m["method"] == "Network.requestWillBeSent"
    }


def _execute(driver: Any, op: Any, expected: str) -> str:
    """Execute the opened operation; the status it shows once it shows `expected` (or
    whatever it shows when the wait ends)."""
    op.find_element(By.CSS_SELECTOR, "button.execute").click()
    cell = ".live-responses-table tbody .response-col_status"

    def status(_: Any) -> str:
        found = op.find_elements(By.CSS_SELECTOR, cell)
        return found[0].text.split()[0] if found and found[0].text else ""

    with contextlib.suppress(TimeoutException):
        WebDriverWait(driver, WAIT_S).until(lambda d: status(d) == expected)
    return status(driver)


def test_swagger_ui_renders_offline_and_sends_the_token(
    live: Live, browser: Any, tmp_path: Path
) -> None:
    insurer = {"authorization": live.bearer("assurance-maladie")}
    made = httpx.post(f"{live.base}/Patient", json=_patient(), headers=insurer)
    assert made.status_code == 201, made.text
    pid = made.json()["id"]

    browser.get(f"{live.root}/docs")
    wait = WebDriverWait(browser, WAIT_S)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".swagger-ui .info .title"))
    browser.save_screenshot(str(tmp_path / "docs.png"))
    title = browser.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text
    assert title.startswith("DMP FHIR server")
    assert len(browser.find_elements(By.CSS_SELECTOR, ".opblock")) > 10
    assert browser.find_elements(By.CSS_SELECTOR, "button.authorize")
    assert {u for u in _requested(browser) if not u.startswith(live.root + "/")} == set()

    # read the Patient by "Try it out": refused without a token, answered with one
    op = browser.find_element(By.ID, READ_OP)
    op.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    wait.until(lambda _: op.find_elements(By.CSS_SELECTOR, "button.try-out__btn"))
    op.find_element(By.CSS_SELECTOR, "button.try-out__btn").click()
    Select(op.find_element(By.CSS_SELECTOR, "select")).select_by_visible_text("Patient")
    op.find_element(By.CSS_SELECTOR, "input[placeholder='id']").send_keys(pid)
    assert _execute(browser, op, "401") == "401"

    browser.find_element(By.CSS_SELECTOR, "button.authorize").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".auth-container input"))
    token = live.bearer("patient", patient=pid).removeprefix("Bearer ")
    browser.find_element(By.CSS_SELECTOR, ".auth-container input").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper button.authorize").click()
    browser.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper button.btn-done").click()
    assert _execute(browser, op, "200") == "200"
    body = op.find_element(By.CSS_SELECTOR, ".live-responses-table tbody .response-col_description")
    assert pid in body.text
    browser.execute_script("arguments[0].scrollIntoView()", op)
    browser.save_screenshot(str(tmp_path / "docs-try-it-out.png"))
