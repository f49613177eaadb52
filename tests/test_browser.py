"""The leaderboard page and a report in a real browser (headless Chromium through Selenium).

`.ci/run` installs Debian's ``chromium`` and ``chromium-driver`` when they are missing and sets
``UNLEARNBENCH_REQUIRE_BROWSER=1``, so there a missing browser fails instead of skipping.
Screenshots go to ``$UNLEARNBENCH_ARTIFACTS`` (`.ci/run`: ``test-artifacts/``), else to pytest's
temporary folder; their paths are printed and recorded as the test's ``screenshot`` property.
"""

import os
import shutil
from pathlib import Path

import pytest
from _tiny_runs import copy_run, tiny_diffusion_run, tiny_loader, tiny_runs

from unlearnbench.leaderboard import boards
from unlearnbench.leaderboard.submissions import submit
from unlearnbench.report.runs import write_report

pytestmark = pytest.mark.browser


def _find(*names: str) -> str | None:
    return next((p for p in map(shutil.which, names) if p), None)


@pytest.fixture(scope="module")
def browser():
    chromium = _find("chromium", "chromium-browser", "google-chrome")
    driver_path = _find("chromedriver")
    reason = "headless Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        chromium = None
        reason = "selenium is not installed (pip install -e .[test])"
    if not (chromium and driver_path):
        if os.environ.get("UNLEARNBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("UNLEARNBENCH_ARTIFACTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def runs(tiny_synth, tmp_path_factory):
    return tiny_runs(tiny_synth, tmp_path_factory)


@pytest.fixture(scope="module")
def board(runs, tiny_synth, tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    board = root / "leaderboards"
    for method, run in runs.items():
        submit(copy_run(run, root / "runs" / method), board=board, task_loader=tiny_loader(tiny_synth))
    boards.build(board)
    return board


def _screenshot(driver, artifacts: Path, name: str, record_property) -> Path:
    driver.set_window_size(1400, max(1000, min(6000, driver.execute_script("return document.body.scrollHeight"))))
    path = artifacts / name
    assert driver.save_screenshot(str(path)) and path.stat().st_size > 0
    print(f"screenshot: {path}")
    record_property("screenshot", str(path))
    return path


def _run_order(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('table.board tbody.runs tr')).map(r => r.dataset.run);")


def _column_values(driver, col: int) -> list[float]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('table.board tbody.runs tr'))"
        ".map(r => parseFloat(r.cells[arguments[0]].dataset.v));", col)


def test_the_board_shows_a_table_per_task_and_sorts_by_a_clicked_column(browser, board, artifacts, record_property):
    from selenium.webdriver.common.by import By

    browser.get((board / "index.html").as_uri())
    tables = browser.find_elements(By.CSS_SELECTOR, "table.board")
    assert [t.get_attribute("data-task") for t in tables] == ["tofu-synth/forget10"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "tbody.runs tr")) == 2
    assert [r.get_attribute("data-reference") for r in browser.find_elements(By.CSS_SELECTOR, "tbody.references tr")] == [
        "original", "oracle"]
    assert browser.find_elements(By.CSS_SELECTOR, "svg.scatter circle")

    headers = browser.find_elements(By.CSS_SELECTOR, "table.board thead th")
    names = [h.get_attribute("data-col") for h in headers]
    col = names.index("forget_probability")
    headers[col].click()
    assert headers[col].get_attribute("aria-sort") == "ascending"
    ascending = _column_values(browser, col)
    assert ascending == sorted(ascending)
    order = _run_order(browser)
    headers[col].click()
    assert headers[col].get_attribute("aria-sort") == "descending"
    assert _run_order(browser) == order[::-1] and _column_values(browser, col) == sorted(ascending, reverse=True)
    # reference rows stay below the runs, whatever the order
    assert browser.execute_script("return document.querySelector('table.board tbody.references').rows.length") == 2
    _screenshot(browser, artifacts, "leaderboard.png", record_property)


def test_a_report_shows_its_tables_and_every_plot_loads(browser, runs, artifacts, tmp_path, record_property):
    from selenium.webdriver.common.by import By

    out = write_report([runs["original"], runs["ga"]], tmp_path / "report.html")
    browser.get(out.as_uri())
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.metrics")) == 2
    images = browser.find_elements(By.CSS_SELECTOR, "img.plot")
    assert len(images) >= 3
    assert browser.execute_script(
        "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0);")
    _screenshot(browser, artifacts, "report.png", record_property)


def test_a_diffusion_report_shows_the_sample_grid(browser, artifacts, tmp_path, record_property):
    from selenium.webdriver.common.by import By

    pytest.importorskip("diffusers")
    result = tiny_diffusion_run("salun", tmp_path / "runs", {"steps": "2"})
    out = write_report([result.run_dir], tmp_path / "report.html")
    browser.get(out.as_uri())
    grid = browser.find_elements(By.CSS_SELECTOR, "img.plot[alt^='generated samples per class']")
    assert len(grid) == 1 and "original, oracle, unlearned" in grid[0].get_attribute("alt")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0;", grid[0])
    _screenshot(browser, artifacts, "report-diffusion.png", record_property)


def test_a_report_draws_the_trajectory(browser, tiny_synth, artifacts, tmp_path, record_property):
    from selenium.webdriver.common.by import By

    from unlearnbench.runner import RunSpec, run

    result = run(RunSpec(task="tofu-synth/forget10", method="ga", params={"epochs": "1"}, out=tmp_path / "runs",
                         quiet=True, task_options={"synth": tiny_synth}, eval_every=1))
    out = write_report([result.run_dir], tmp_path / "report.html")
    browser.get(out.as_uri())
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.trajectory")
    points = result.record.trajectory.points
    assert {c.get_attribute("data-metric") for c in charts} == set(points[-1].metrics)
    chart = next(c for c in charts if c.get_attribute("data-metric") == "forget_probability")
    assert chart.size["width"] > 100 and chart.size["height"] > 100 and chart.is_displayed()
    assert len(chart.find_elements(By.CSS_SELECTOR, "circle.point")) == len(points)
    _screenshot(browser, artifacts, "report-trajectory.png", record_property)
