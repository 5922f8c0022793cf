"""The playground page in a real browser: Debian's headless Chromium driven by
Selenium over uvicorn (in a thread, on 127.0.0.1, a free port) serving
``create_app(Workspace(...))`` on a generated table of customers and orders.

Counts and downloaded ids are checked against DuckDB SQL written by hand.
Screenshots of each state go to ``$SEGQL_SCREENSHOTS`` (or the test's
tmp_path); ``SEGQL_UPDATE_SCREENSHOTS=1`` also rewrites docs/img/playground.png,
the README's picture.  Without chromium/chromedriver (or selenium) the tests
skip, except under CI (``CI=true``), where they fail.

The first tests need no browser: the page's files, their content types, the
CSP header, /api/source, /api/outline and ``param_texts``.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import uvicorn
from starlette.testclient import TestClient

from segql import ast, demo
from segql.errors import ParameterError
from segql.params import Duration
from segql.parse import parse
from segql.program import Program
from segql.serve import Workspace, create_app
from segql.serve.app import param_value
from segql.types import DECIMAL, INT

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # pragma: no cover - selenium is in the test extra
    webdriver = None

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("SEGQL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("SEGQL_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT = 15.0


def make_tables(n: int = 3000, seed: int = 20) -> tuple[pa.Table, pa.Table]:
    rng = random.Random(seed)
    ids = list(range(1, n + 1))
    ages = [rng.randint(18, 85) if rng.random() > 0.05 else None for _ in ids]
    countries = [rng.choice(["FR", "DE", "PL", "US"]) for _ in ids]
    who, amounts = [], []
    for i in ids:
        for _ in range(rng.choice([0, 0, 1, 2, 3, 5])):
            who.append(i)
            amounts.append(round(rng.uniform(1, 400), 2))
    profile = pa.table(
        {"customer_id": pa.array(ids, pa.int64()), "age": pa.array(ages, pa.int64()), "country": countries}
    )
    orders = pa.table({"customer_id": pa.array(who, pa.int64()), "amount": pa.array(amounts, pa.float64())})
    return profile, orders


PROFILE, ORDERS = make_tables()
SOURCE = (
    "param min_orders: int = 2\n"
    "segment french \"Customers in France\" = country = 'FR'\n"
    "segment buyers = count(orders) >= $min_orders\n"
    "segment big_buyers = sum(orders.amount) > 600 and buyers\n"
)


def duck(sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    con.register("p", PROFILE)
    con.register("o", ORDERS)
    return con.execute(sql).fetchall()


def one(sql: str) -> Any:
    [(value,)] = duck(sql)
    return value


# ---------------------------------------------------------------- no browser
@pytest.fixture
def api(tmp_path: Path) -> tuple[TestClient, Path]:
    path = tmp_path / "segments.segql"
    path.write_text(SOURCE, encoding="utf-8")
    workspace = Workspace(path, PROFILE, {"orders": ORDERS}, key="customer_id", as_of="2026-11-01")
    return TestClient(create_app(workspace)), path


def test_the_page_and_its_files_are_served_from_the_package(api: tuple[TestClient, Path]) -> None:
    client, _ = api
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'id="source"' in page.text and "/static/playground.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    for name, kind in [("playground.js", "javascript"), ("editor.js", "javascript"), ("playground.css", "text/css")]:
        answer = client.get(f"/static/{name}")
        assert answer.status_code == 200 and kind in answer.headers["content-type"], name
        assert "https://" not in answer.text and "http://" not in answer.text
    for bad in ["/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py", "/static/nothing.js"]:
        assert client.get(bad).status_code == 404, bad
    assert client.post("/static/editor.js").status_code in (404, 405)


def test_source_and_outline(api: tuple[TestClient, Path]) -> None:
    client, _ = api
    assert client.post("/api/source", json={}).json() == {
        "source": SOURCE,
        "file": "segments.segql",
        "as_of": "2026-11-01",
    }
    outline = client.post("/api/outline", json={"source": SOURCE}).json()
    assert [s["name"] for s in outline["segments"]] == ["french", "buyers", "big_buyers"]
    assert outline["segments"][0]["description"] == "Customers in France"
    assert outline["params"] == [{"name": "min_orders", "type": "int", "default": "2", "declared": True}]
    assert outline["key"] == "customer_id" and outline["key_type"] == "int64"
    assert outline["rows"] == PROFILE.num_rows and outline["related"] == ["orders"]
    assert "duckdb" in outline["dialects"] and outline["why"] is True
    broken = client.post("/api/outline", json={"source": "segment a = "}).json()
    assert broken["segments"] is None and broken["params"] is None and broken["error"]
    assert broken["dialects"] == outline["dialects"] and broken["file"] == "segments.segql"


def test_source_of_a_new_file_is_empty(tmp_path: Path) -> None:
    client = TestClient(create_app(Workspace(tmp_path / "new.segql", PROFILE)))
    assert client.post("/api/source", json={}).json() == {"source": "", "file": "new.segql", "as_of": None}
    outline = client.post("/api/outline", json={"source": ""}).json()
    assert outline["segments"] is None and "empty" in outline["error"]
    assert outline["why"] is False and outline["key_type"] is None


def test_param_texts_are_read_for_the_declared_type(api: tuple[TestClient, Path]) -> None:
    client, _ = api
    source = (
        'param n: int = 2\nparam since: date = 2000-01-01\nparam c: string = "FR"\n'
        "segment a = count(orders) >= $n and country = $c and $since < 2026-01-01\n"
        "segment b = age > $undeclared\n"
    )
    texts = {"n": "3", "since": "2024-12-24", "c": "DE", "undeclared": "40"}
    got = client.post("/api/counts", json={"source": source, "param_texts": texts}).json()
    expected_a = one(
        "select count(*) from p where country = 'DE' and customer_id in "
        "(select customer_id from o group by 1 having count(*) >= 3)"
    )
    assert got["sizes"] == {"a": expected_a, "b": one("select count(*) from p where age > 40")}
    bad = client.post("/api/counts", json={"source": source, "param_texts": {**texts, "n": "many"}})
    assert bad.status_code == 422 and "$n" in bad.json()["error"]["message"]
    assert client.post("/api/counts", json={"source": source, "param_texts": {"n": 3}}).status_code == 400


@pytest.mark.parametrize(
    ("declared", "written", "value"),
    [
        ("int", "42", 42),
        ("float", "2.5", 2.5),
        ("decimal", "2.25", Decimal("2.25")),
        ("string", "Kraków", "Kraków"),
        ("string", '"a b"', "a b"),
        ("bool", "false", False),
        ("date", "2024-12-24", dt.date(2024, 12, 24)),
        ("timestamp", "2024-12-24T10:00:00+02:00", dt.datetime(2024, 12, 24, 8, 0)),
        ("list<string>", '["PL", "DE"]', ["PL", "DE"]),
        ("duration", "30d", Duration(0, 30 * 86_400_000_000)),
        (None, "40", 40),
        (None, "0.5", 0.5),
        (None, "true", True),
        (None, "PL", "PL"),
    ],
)
def test_a_parameter_text_is_read_as_its_type(declared: str | None, written: str, value: Any) -> None:
    source = f"param x: {declared} = {written}\nsegment s = true\n" if declared else "segment s = $x > 1\n"
    [decl] = [d for d in parse(source).decls if isinstance(d, ast.ParamDecl)] or [None]
    assert param_value("x", decl.declared if decl else None, f" {written} ") == value


def test_a_bad_parameter_text_names_the_parameter() -> None:
    for declared, written in [(INT, "many"), (DECIMAL, "1,5"), (INT, "1\nsegment y = true")]:
        with pytest.raises(ParameterError, match=r"\$x"):
            param_value("x", declared, written)


def test_completion_answers_carry_the_replaced_range(api: tuple[TestClient, Path]) -> None:
    client, _ = api
    items = client.post("/api/complete", json={"source": "segment a = cou", "line": 0, "character": 15}).json()
    country = next(i for i in items if i["label"] == "country")
    assert country["range"] == {"start": {"line": 0, "character": 12}, "end": {"line": 0, "character": 15}}


# ---------------------------------------------------------------- the browser
def _browser_missing() -> str | None:
    if webdriver is None:
        return "selenium is not installed (pip install 'segql[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


def _no_browser(reason: str) -> None:
    """Skip, saying why -- or fail under CI, where the browser tests must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the browser tests need Chromium under CI: {reason}")
    pytest.skip(reason)


def test_a_missing_browser_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f"{__name__}.CHROMEDRIVER", "/nonexistent/segql-chromedriver")
    assert _browser_missing() == "/nonexistent/segql-chromedriver is missing (apt-get install chromium chromium-driver)"


class Served:
    """uvicorn serving one app in a thread, on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def driver(downloads: Path) -> Iterator[WebDriver]:
    missing = _browser_missing()
    if missing:
        _no_browser(missing)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    try:
        browser = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    except WebDriverException as exc:
        _no_browser(f"{CHROMEDRIVER} could not start {CHROMIUM}: {exc.msg}")
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    yield browser
    browser.quit()


@pytest.fixture(scope="module")
def segment_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("workspace") / "segments.segql"


@pytest.fixture(scope="module")
def server(segment_file: Path, driver: WebDriver) -> Iterator[Served]:
    workspace = Workspace(segment_file, PROFILE, {"orders": ORDERS}, key="customer_id", timeout=20.0)
    served = Served(create_app(workspace))
    yield served
    served.stop()


@pytest.fixture
def shot(tmp_path: Path, driver: WebDriver) -> Callable[[str], Path]:
    folder = Path(os.environ.get("SEGQL_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = folder / f"{name}.png"
        driver.save_screenshot(str(path))
        return path

    return take


def until(driver: WebDriver, check: Callable[[], Any], what: str | Callable[[], str], timeout: float = WAIT) -> Any:
    """Wait for ``check()`` to be true; ``what`` says what was awaited (a
    callable is called at the failure, to show the page's state then)."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda _: check())
    except TimeoutException:
        what = what() if callable(what) else what
        logs = "\n".join(str(e) for e in driver.get_log("browser")) if hasattr(driver, "get_log") else ""
        raise AssertionError(f"timed out waiting for {what}\nbrowser log:\n{logs}") from None


def text(driver: WebDriver, css: str) -> str:
    """The shown text of the first element of ``css`` ("" if none)."""
    shown = driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.innerText : ''", css)
    return str(shown).strip()


def counts_shown(driver: WebDriver) -> dict[str, int]:
    rows = driver.execute_script(
        "return [...document.querySelectorAll('#counts:not(.stale) tbody tr')]"
        ".map(r => [r.dataset.segment, Number(r.dataset.members)])"
    )
    return dict(rows)


def click(driver: WebDriver, css: str) -> None:
    """Click the first element of ``css`` (found again if the page redraws it meanwhile)."""

    def attempt() -> bool:
        try:
            driver.find_element(By.CSS_SELECTOR, css).click()
            return True
        except StaleElementReferenceException:
            return False

    until(driver, attempt, f"{css} to click")


def squiggled(driver: WebDriver) -> list[str]:
    """The text under each error squiggle (a squiggle spans several coloured runs)."""
    runs = driver.execute_script(
        "return [...document.querySelectorAll('#highlight .squiggle-error')]"
        ".map(s => [s.dataset.diagnostic, s.textContent])"
    )
    texts: dict[str, str] = {}
    for diagnostic, shown in runs:
        texts[diagnostic] = texts.get(diagnostic, "") + shown
    return list(texts.values())


def hover_over(driver: WebDriver, css: str, shown: str) -> None:
    """Move the mouse over the element of ``css`` whose text is ``shown``
    (found again if the page redraws it meanwhile)."""

    def move() -> bool:
        try:
            found = [e for e in driver.find_elements(By.CSS_SELECTOR, css) if e.text == shown]
            if not found:
                return False
            ActionChains(driver).move_to_element(found[0]).perform()
            return True
        except StaleElementReferenceException:
            return False

    until(driver, move, f"{shown!r} to hover over")


def open_page(driver: WebDriver, server: Served, segment_file: Path, source: str) -> WebElement:
    segment_file.write_text(source, encoding="utf-8")
    driver.get(server.url)
    until(driver, lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true", "the page")
    editor = driver.find_element(By.ID, "source")
    assert editor.get_attribute("value") == source
    return editor


def type_at_end(driver: WebDriver, editor: WebElement, keys: str) -> None:
    editor.click()
    editor.send_keys(Keys.CONTROL, Keys.END)
    editor.send_keys(keys)


def expected_counts() -> dict[str, int]:
    french, buyers, big = duck(
        """
        with b as (select customer_id, sum(amount) s from o group by 1 having count(*) >= 2)
        select (select count(*) from p where country = 'FR'),
               (select count(*) from b),
               (select count(*) from b where s > 600)
        """
    )[0]
    return {"french": french, "buyers": buyers, "big_buyers": big}


def test_typo_squiggle_did_you_mean_fix_and_count(
    driver: WebDriver, server: Served, segment_file: Path, shot: Callable[[str], Path]
) -> None:
    editor = open_page(driver, server, segment_file, SOURCE)
    until(driver, lambda: counts_shown(driver) == expected_counts(), "the first counts")
    assert text(driver, "#heatmap tbody tr").startswith("french")
    shot("1-opened")

    type_at_end(driver, editor, "segment seniors = agee >= 65")
    until(driver, lambda: "did you mean 'age'" in text(driver, "#problems"), "the did-you-mean in the problems")
    squiggles = squiggled(driver)
    assert squiggles == ["agee"]  # exactly the range of the typo
    hover_over(driver, "#highlight .squiggle-error", "agee")
    assert editor.get_attribute("aria-invalid") == "true"
    tooltip = driver.find_element(By.ID, "tooltip")
    until(driver, lambda: tooltip.is_displayed() and "unknown column 'agee'" in tooltip.text, "the squiggle's tooltip")
    assert "did you mean 'age'" in tooltip.text
    until(driver, lambda: driver.find_elements(By.CSS_SELECTOR, "#counts.stale"), "the counts marked stale")
    assert "agee" in text(driver, "#counts-status")
    shot("2-typo")

    # The problem's place selects the typo in the editor.
    click(driver, "#problems button.goto")
    assert (
        driver.execute_script("const t = arguments[0]; return t.value.slice(t.selectionStart, t.selectionEnd)", editor)
        == "agee"
    )

    # Fix it by typing: select the typo with the keyboard and type over it.
    editor.send_keys(Keys.END, Keys.ESCAPE, *([Keys.ARROW_LEFT] * len(" >= 65")))
    editor.send_keys(Keys.BACKSPACE)
    until(driver, lambda: not driver.find_elements(By.CSS_SELECTOR, "#highlight .squiggle"), "no squiggle left")
    seniors = one("select count(*) from p where age >= 65")
    until(driver, lambda: counts_shown(driver) == {**expected_counts(), "seniors": seniors}, "the new count")
    share = text(driver, '#counts tr[data-segment="seniors"] .share')
    assert share == f"{100 * seniors / PROFILE.num_rows:.1f}%"
    assert text(driver, "#problems") == ""
    shot("3-fixed")


def test_select_why_save_and_download(
    driver: WebDriver, server: Served, segment_file: Path, downloads: Path, shot: Callable[[str], Path]
) -> None:
    editor = open_page(driver, server, segment_file, SOURCE)
    until(driver, lambda: counts_shown(driver) == expected_counts(), "the counts")
    click(driver, '#counts tr[data-segment="big_buyers"] button')
    until(driver, lambda: text(driver, "#selected-name") == "big_buyers", "the selection")
    over_600 = one("select count(*) from (select 1 from o group by customer_id having sum(amount) > 600)")
    until(
        driver,
        lambda: (
            driver.execute_script(
                "return [...document.querySelectorAll('#attrition .customers')].map(c => Number(c.dataset.customers))"
            )
            == [over_600, expected_counts()["big_buyers"]]
        ),
        "the attrition of big_buyers",
    )
    member, outsider = duck(
        "select min(customer_id) filter (where s > 600), min(customer_id) filter (where s <= 600) "
        "from (select customer_id, sum(amount) s from o group by 1 having count(*) >= 2)"
    )[0]
    until(driver, lambda: text(driver, "#preview tbody tr").startswith(str(member)), "the preview's first member")
    assert [c.text for c in driver.find_elements(By.CSS_SELECTOR, "#preview thead th")] == ["customer_id"]

    for who, verdict in [(member, "→ member"), (outsider, "→ not a member")]:
        box = driver.find_element(By.ID, "why-id")
        box.clear()
        box.send_keys(str(who), Keys.ENTER)
        until(
            driver,
            lambda w=who, v=verdict: (
                f"customer_id = {w}" in text(driver, "#why-output") and v in text(driver, "#why-output")
            ),
            f"why for {who}",
        )
    shot("4-why")

    type_at_end(driver, editor, "segment germans = country = 'DE'")
    driver.find_element(By.ID, "save").click()
    until(driver, lambda: text(driver, "#save-status").startswith("Saved"), "the save")
    assert segment_file.read_text(encoding="utf-8") == SOURCE + "segment germans = country = 'DE'"
    germans = one("select count(*) from p where country = 'DE'")
    # The new segment's row moves the buttons below the counts: click once the page is still.
    until(driver, lambda: counts_shown(driver).get("germans") == germans, "the count of the new segment")
    until(driver, lambda: text(driver, "#preview-status").startswith("first"), "the preview of the selection")
    shot("5-saved")

    for old in downloads.glob("*"):
        old.unlink()
    driver.find_element(By.ID, "download-csv").click()
    target = downloads / "big_buyers.csv"
    until(
        driver,
        lambda: target.exists() and target.stat().st_size > 0,
        lambda: f"the downloaded CSV (status {text(driver, '#download-status')!r}, {sorted(downloads.iterdir())})",
    )
    with target.open(encoding="utf-8") as handle:
        ids = [int(row["customer_id"]) for row in csv.DictReader(handle)]
    reference = [
        r[0]
        for r in duck(
            "select customer_id from p where customer_id in "
            "(select customer_id from o group by 1 having count(*) >= 2 and sum(amount) > 600) order by 1"
        )
    ]
    assert ids == reference
    assert "downloaded big_buyers.csv" in text(driver, "#download-status")

    Select(driver.find_element(By.ID, "dialect")).select_by_value("postgres")
    driver.find_element(By.ID, "sql-copy").click()
    until(driver, lambda: "SELECT" in text(driver, "#sql-output").upper(), "the SQL")
    until(driver, lambda: text(driver, "#sql-status") != "writing SQL…", "the copy")
    shot("6-sql")


def test_completion_and_hover(
    driver: WebDriver, server: Served, segment_file: Path, shot: Callable[[str], Path]
) -> None:
    editor = open_page(driver, server, segment_file, SOURCE)
    type_at_end(driver, editor, "segment some = cou")
    editor.send_keys(Keys.CONTROL, " ")
    popup = driver.find_element(By.ID, "completions")
    until(driver, lambda: popup.is_displayed() and "country" in popup.text, "the completion popup")
    labels = [li.text.split("\n")[0] for li in popup.find_elements(By.TAG_NAME, "li")]
    shot("7-completion")
    editor.send_keys(*([Keys.ARROW_DOWN] * labels.index("country")), Keys.ENTER)
    until(driver, lambda: editor.get_attribute("value").endswith("segment some = country"), "the accepted completion")
    assert not popup.is_displayed()
    # Escape closes the popup without inserting anything.
    editor.send_keys(" = 'FR' and co")
    editor.send_keys(Keys.CONTROL, " ")
    until(driver, lambda: popup.is_displayed(), "the popup again")
    editor.send_keys(Keys.ESCAPE)
    until(driver, lambda: not popup.is_displayed(), "the popup closed by Escape")
    assert editor.get_attribute("value").endswith("= 'FR' and co")

    hover_over(driver, "#highlight span", "min_orders")
    tooltip = driver.find_element(By.ID, "tooltip")
    until(driver, lambda: tooltip.is_displayed() and "min_orders" in tooltip.text, "the hover")
    assert "int" in tooltip.text
    shot("8-hover")

    # The problems list's suggestion button puts the suggestion in place of the typo.
    driver.execute_script("arguments[0].select()", editor)
    editor.send_keys("segment s = agee > 3")
    until(driver, lambda: text(driver, "#problems button.fix") == "use 'age'", "the fix button")
    click(driver, "#problems button.fix")
    until(driver, lambda: editor.get_attribute("value") == "segment s = age > 3", "the fixed text")
    until(driver, lambda: counts_shown(driver) == {"s": one("select count(*) from p where age > 3")}, "its count")


def test_server_texts_are_shown_as_text_never_as_html(driver: WebDriver, server: Served, segment_file: Path) -> None:
    hostile = "<img src=x onerror='document.title=1'>"
    source = f'segment a "{hostile}" = country = "{hostile}"\n'
    open_page(driver, server, segment_file, source)
    until(driver, lambda: counts_shown(driver) == {"a": 0}, "the count")
    until(driver, lambda: text(driver, "#selected-description") == hostile, "the description")
    assert driver.find_elements(By.CSS_SELECTOR, "img") == []
    assert driver.title == "segql playground"


def test_typing_is_not_blocked_while_counts_are_in_flight(
    driver: WebDriver, server: Served, segment_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, started, answered = threading.Event(), threading.Event(), threading.Event()
    original = Program.counts

    def slow_counts(self: Program, data: Any, **options: Any) -> Any:
        if "slow" not in self.source:
            return original(self, data, **options)
        started.set()
        gate.wait(WAIT)
        options.pop("cancel", None)  # answer even when superseded: the page must drop it by request_id
        try:
            return original(self, data, **options)
        finally:
            answered.set()

    monkeypatch.setattr(Program, "counts", slow_counts)
    editor = open_page(driver, server, segment_file, "segment slow = age > 1\n")
    try:
        assert started.wait(WAIT), "the slow count never started"
        until(driver, lambda: text(driver, "#counts-status") == "counting…", "the pending count")
        begun = time.monotonic()
        driver.execute_script("arguments[0].select()", editor)
        editor.send_keys("segment quick = age >= 30")
        typed = time.monotonic() - begun
        assert editor.get_attribute("value") == "segment quick = age >= 30"
        assert "quick" in text(driver, "#highlight")  # the page redrew as it was typed
        assert typed < WAIT / 2
        quick = one("select count(*) from p where age >= 30")
        until(driver, lambda: counts_shown(driver) == {"quick": quick}, "the newer count")
    finally:
        gate.set()
    assert answered.wait(WAIT)
    time.sleep(0.3)  # the superseded answer reaches the page now, which must drop it
    assert counts_shown(driver) == {"quick": quick}


def test_a_server_that_went_away_is_said_and_saving_can_be_retried(driver: WebDriver, tmp_path: Path) -> None:
    path = tmp_path / "s.segql"
    served = Served(create_app(Workspace(path, PROFILE, key="customer_id")))
    try:
        editor = open_page(driver, served, path, "segment a = age > 30\n")
        until(driver, lambda: counts_shown(driver) == {"a": one("select count(*) from p where age > 30")}, "counts")
    finally:
        served.stop()
    type_at_end(driver, editor, "segment b = age < 20")
    until(driver, lambda: "cannot reach the server" in text(driver, "#counts-status"), "the network error")
    driver.find_element(By.ID, "save").click()
    until(driver, lambda: "not saved: cannot reach the server" in text(driver, "#save-status"), "the failed save")
    assert driver.find_element(By.ID, "save").is_enabled()
    assert path.read_text(encoding="utf-8") == "segment a = age > 30\n"


def test_the_readme_screenshot_of_the_demo(driver: WebDriver, tmp_path: Path, shot: Callable[[str], Path]) -> None:
    customers = demo.customers()
    orders = demo.orders(customers)
    path = tmp_path / "demo.segql"
    path.write_text(demo.source(), encoding="utf-8")
    served = Served(
        create_app(
            Workspace(path, customers, {"orders": orders}, key="customer_id", as_of=demo.AS_OF.date().isoformat())
        )
    )
    metrics = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)  # the README's picture: 1280x900
    try:
        driver.get(served.url)
        expected = Program(demo.source()).counts(
            customers, key="customer_id", related={"orders": orders}, as_of=demo.AS_OF
        )
        until(driver, lambda: counts_shown(driver) == expected.sizes, "the demo's counts", timeout=30)
        click(driver, '#counts tr[data-segment="young_poles"] button')
        until(driver, lambda: text(driver, "#selected-name") == "young_poles", "the selection")
        until(driver, lambda: text(driver, "#preview-status").startswith("first"), "the preview")
        heads = driver.execute_script("return [...document.querySelectorAll('#preview th')].map(t => t.textContent)")
        assert heads == ["customer_id", "age", "country", "city"]
        driver.execute_script(  # the segments in view, the cursor in one of them
            "const t = arguments[0], at = t.value.indexOf('segment young_poles');"
            "t.focus(); t.setSelectionRange(at + 8, at + 8);"
            "t.scrollTop = (t.value.slice(0, at).split('\\n').length - 3) * 20;",
            driver.find_element(By.ID, "source"),
        )
        picture = shot("demo")
        if os.environ.get("SEGQL_UPDATE_SCREENSHOTS") == "1":
            target = ROOT / "docs" / "img" / "playground.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(picture, target)
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        served.stop()


def test_params_and_errors_never_leave_the_page_stuck(
    driver: WebDriver, server: Served, segment_file: Path, monkeypatch: pytest.MonkeyPatch, shot: Callable[[str], Path]
) -> None:
    open_page(driver, server, segment_file, SOURCE)
    until(driver, lambda: counts_shown(driver) == expected_counts(), "the counts")
    field = driver.find_element(By.ID, "param-min_orders")
    assert field.get_attribute("placeholder") == "2"
    field.send_keys("many")
    until(
        driver,
        lambda: "$min_orders = many is not a value of type int" in text(driver, "#counts-status"),
        "the bad param",
    )
    assert driver.find_elements(By.CSS_SELECTOR, "#counts.stale")
    shot("9-bad-param")
    field.clear()
    field.send_keys("3")
    three = one("select count(*) from (select 1 from o group by customer_id having count(*) >= 3)")
    until(driver, lambda: counts_shown(driver).get("buyers") == three, "the count with $min_orders = 3")

    # The evaluation fields go with every count: a bad one is an error beside the counts.
    for field_id, bad, message in [
        ("as-of", "yesterday", "as_of 'yesterday' is not an ISO 8601 date"),
        ("time-zone", "Mars/Base", "unknown time zone 'Mars/Base'"),
    ]:
        box = driver.find_element(By.ID, field_id)
        box.send_keys(bad)
        until(driver, lambda m=message: m in text(driver, "#counts-status"), message)
        box.clear()
        box.send_keys(" ")  # an edit event; blank means the default
        until(driver, lambda: counts_shown(driver).get("buyers") == three, f"the counts again after {field_id}")

    # An error only the evaluation finds (the checker cannot): its position becomes a squiggle.
    type_at_end(driver, driver.find_element(By.ID, "source"), "segment huge = age * 9223372036854775807 > 0")
    until(driver, lambda: "integer overflow" in text(driver, "#problems"), "the evaluation's error as a problem")
    squiggles = squiggled(driver)
    assert squiggles == ["age * 9223372036854775807"]
    shot("10-evaluation-error")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Program, "stream", broken)  # the download's evaluation: a 500
    button = driver.find_element(By.ID, "download-parquet")
    button.click()
    until(driver, lambda: "internal error" in text(driver, "#download-status"), "the 500's message")
    assert button.is_enabled()
