"""The interactive map in a real browser: Debian's headless Chromium, driven by Selenium
through Debian's chromedriver (`make test` installs both), offline."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from text_clustering.html_map import build_map_html, save_cluster_map

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
NAMES = {0: "chess engines", 1: "mail servers", 2: "font families", -1: "Unclassified"}


def sample():
    rng = np.random.default_rng(0)
    centres = {0: (0, 0), 1: (10, 0), 2: (5, 8)}
    labels = np.array([0] * 30 + [1] * 20 + [2] * 10 + [-1] * 5, dtype=np.int32)
    points = np.array(
        [rng.normal(centres[c], 0.8) if c >= 0 else rng.uniform(-2, 12, 2) for c in labels],
        dtype=np.float32,
    )
    texts = [f"{NAMES[c]} text number {i} <b>not bold</b>" for i, c in enumerate(labels)]
    return points, labels, texts


def test_html_is_self_contained_and_escapes_texts():
    points, labels, texts = sample()
    page = build_map_html(points, labels, [*texts[:-1], "</script><script>alert(1)"], NAMES)
    assert "http://" not in page and "https://" not in page  # no CDN, nothing fetched
    assert "<script src" not in page and "<link" not in page and "url(" not in page
    assert page.count("</script>") == 2  # the data cannot close its own script tag
    data = json.loads(page.split('type="application/json">')[1].split("</script>")[0])
    assert len(data["x"]) == 65
    assert [c["label"] for c in data["clusters"]][:3] == NAMES_IN_ORDER


NAMES_IN_ORDER = ["chess engines", "mail servers", "font families"]


def test_a_large_map_shows_a_sample_with_the_true_cluster_sizes(tmp_path):
    points, labels, texts = sample()
    path = save_cluster_map(points, labels, texts, NAMES, tmp_path / "m.html", max_points=13)
    page = path.read_text(encoding="utf-8")
    data = json.loads(page.split('type="application/json">')[1].split("</script>")[0])
    assert len(data["x"]) == len(data["t"]) == 13
    assert data["t"][0] == texts[0] and data["t"][-1] == texts[-1]  # evenly spaced, ends kept
    assert [c["size"] for c in data["clusters"]] == [30, 20, 10, 5]  # the whole data's sizes
    assert "13 of 65 texts shown" in page


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert shutil.which(CHROMIUM) or shutil.which("chromium"), (
        "Chromium is missing: `make test` installs it (apt-get install chromium chromium-driver)"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1200,800",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_points_render_hover_search_and_toggle_in_chromium(browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    points, labels, texts = sample()
    page = save_cluster_map(points, labels, texts, NAMES, tmp_path / "map.html")
    browser.get(page.as_uri())
    WebDriverWait(browser, 20).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true"
    )
    canvas = browser.find_element(By.ID, "map")
    assert canvas.get_attribute("data-drawn") == "65"  # every point rendered

    # hover: the real mouse over text 35 (a "mail servers" text) shows its text and label
    target = browser.execute_script("return window.textClusterMap.position(35)")
    rect = browser.execute_script("return arguments[0].getBoundingClientRect()", canvas)
    ActionChains(browser).move_to_element_with_offset(
        canvas,
        int(target["x"] - rect["left"] - rect["width"] / 2),
        int(target["y"] - rect["top"] - rect["height"] / 2),
    ).perform()
    tooltip = browser.find_element(By.ID, "tooltip")
    WebDriverWait(browser, 5).until(lambda d: tooltip.is_displayed())
    assert tooltip.find_element(By.TAG_NAME, "b").text == "mail servers"
    assert "mail servers text number" in tooltip.text and "<b>not bold</b>" in tooltip.text

    # zoom in around the centre: the point moves away from the centre; reset brings it back
    browser.find_element(By.ID, "zoom-in").click()
    zoomed = browser.execute_script("return window.textClusterMap.position(35)")
    centre_x = rect["left"] + rect["width"] / 2
    assert abs(zoomed["x"] - centre_x) > abs(target["x"] - centre_x)
    browser.find_element(By.ID, "reset").click()
    assert browser.execute_script("return window.textClusterMap.position(35)") == target

    # search by label
    box = browser.find_element(By.ID, "search")
    box.send_keys("mail")
    status = browser.find_element(By.ID, "status")
    assert status.get_attribute("data-matches") == "1"
    matched = browser.find_elements(By.CSS_SELECTOR, "#legend label.match")
    assert [m.get_attribute("data-cluster") for m in matched] == ["1"]
    box.clear()
    box.send_keys("zzz")
    assert status.get_attribute("data-matches") == "0"

    # toggle a cluster off: its 30 points are no longer drawn
    browser.find_element(By.CSS_SELECTOR, '#legend label[data-cluster="0"] input').click()
    assert canvas.get_attribute("data-drawn") == "35"

    screenshot = tmp_path / "map.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:4] == b"\x89PNG" and screenshot.stat().st_size > 5000
