"""The interactive map in a real browser: Debian's headless Chromium, driven by Selenium
through Debian's chromedriver (`make test` installs both), offline. One browser for the
module; the map of a fixture shaped like the demo's (3,000 texts, 30 clusters in 6 headline
topics, a layer between them, noise)."""

from __future__ import annotations

import base64
import csv
import io
import itertools
import json
import shutil
import time

import numpy as np
import pytest

from text_clustering.html_map import build_map_html, hover_chars, save_cluster_map

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
NAMES = {0: "chess engines", 1: "mail servers", 2: "font families", -1: "Unclassified"}
TOPICS = ["board games", "mail and news", "fonts", "databases", "audio", "science"]
RARE = "thunderbird"  # occurs in some texts, in no label


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


def demo_like(n: int = 3000):
    """``n`` texts in 30 clusters (5 per headline topic, in two groups of a middle layer) and
    5 % noise, with paths like fct_text_clusters.topic_path: top, headline, middle, cluster."""
    rng = np.random.default_rng(7)
    noise = n // 20
    labels = np.concatenate([rng.integers(0, 30, n - noise), np.full(noise, -1)]).astype(np.int32)
    angle = np.arange(6) * np.pi / 3
    topic_xy = np.stack([np.cos(angle), np.sin(angle)], axis=1) * 12
    part = np.arange(5) * 2 * np.pi / 5
    around = 2 * np.stack([np.cos(part), np.sin(part)], axis=1)
    cluster_xy = np.array([topic_xy[c // 5] + around[c % 5] for c in range(30)])
    points = np.where(
        (labels >= 0)[:, None],
        cluster_xy[np.maximum(labels, 0)] + rng.normal(0, 0.45, (n, 2)),
        rng.uniform(-16, 16, (n, 2)),
    ).astype(np.float32)
    # long labels on clusters close together: they would collide if drawn all
    names = {c: f"{TOPICS[c // 5]} part {c % 5}, with a long label" for c in range(30)}
    names[-1] = "Unclassified"

    def path(c: int) -> list[str] | None:
        if c < 0:
            return None
        middle = f"{TOPICS[c // 5]}, the {'first' if c % 5 < 3 else 'second'} half of it"
        return ["everything" if c < 15 else "the rest", TOPICS[c // 5], middle, names[c]]

    paths = [path(int(c)) for c in labels]
    topics = [p[1] if p else None for p in paths]
    texts = [f"text {i} about {names[int(c)]}" for i, c in enumerate(labels)]
    rare = [i for i in range(0, n - noise, 211)][:9]
    for i in rare:
        texts[i] += f" (mentions {RARE.title()} once)"
    ids = [f"id-{i:05d}" for i in range(n)]
    return points, labels, texts, names, paths, topics, ids, rare


def page_data(page: str) -> dict:
    return json.loads(page.split('type="application/json">')[1].split("</script>")[0])


def test_html_is_self_contained_and_escapes_texts():
    points, labels, texts = sample()
    page = build_map_html(points, labels, [*texts[:-1], "</script><script>alert(1)"], NAMES)
    assert "http://" not in page and "https://" not in page  # no CDN, nothing fetched
    assert "<script src" not in page and "<link" not in page and "url(" not in page
    assert page.count("</script>") == 2  # the data cannot close its own script tag
    data = page_data(page)
    assert data["n"] == 65 and len(base64.b64decode(data["xy"])) == 65 * 2 * 4
    assert [c["label"] for c in data["clusters"]][:3] == NAMES_IN_ORDER
    assert data["t"][-1] == "</script><script>alert(1)"  # kept as text, shown escaped


NAMES_IN_ORDER = ["chess engines", "mail servers", "font families"]


def test_a_large_map_shows_a_sample_with_the_true_cluster_sizes(tmp_path):
    points, labels, texts = sample()
    path = save_cluster_map(points, labels, texts, NAMES, tmp_path / "m.html", max_points=13)
    page = path.read_text(encoding="utf-8")
    data = page_data(page)
    assert data["n"] == len(data["t"]) == len(data["ids"]) == 13
    assert data["t"][0] == texts[0] and data["t"][-1] == texts[-1]  # evenly spaced, ends kept
    assert data["ids"][-1] == "64"  # a sampled text keeps its own id
    assert [c["size"] for c in data["clusters"]] == [30, 20, 10, 5]  # the whole data's sizes
    assert "13 of 65 texts shown" in page


def test_label_layers_follow_the_topic_paths_from_the_headline_down():
    points, labels, texts, names, paths, topics, _, _ = demo_like(600)
    data = page_data(build_map_html(points, labels, texts, names, topic_paths=paths, topics=topics))
    layers = data["layers"]
    assert [len(layer["labels"]) for layer in layers] == [6, 12, 30]  # headline, middle, clusters
    assert [layer["level"] for layer in layers] == [2, 1, 0]  # dim_topics' levels (3: the top)
    assert {t["label"] for t in layers[0]["labels"]} == set(TOPICS)
    board = next(t for t in layers[0]["labels"] if t["label"] == "board games")
    assert sorted(board["clusters"]) == [0, 1, 2, 3, 4]
    assert board["size"] == int(((labels >= 0) & (labels < 5)).sum())
    assert hover_chars(100_000) == 160 and hover_chars(1000) == 300  # the texts fit the file


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
        "--headless=new", "--no-sandbox", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--enable-unsafe-swiftshader", "--window-size=1200,800", "--hide-scrollbars",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    downloads = tmp_path_factory.mktemp("downloads")
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.downloads = downloads
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def demo_map(tmp_path_factory):
    points, labels, texts, names, paths, topics, ids, rare = demo_like()
    path = save_cluster_map(
        points,
        labels,
        texts,
        names,
        tmp_path_factory.mktemp("map") / "map.html",
        text_ids=ids,
        topic_paths=paths,
        topics=topics,
    )
    return {"path": path, "labels": labels, "ids": ids, "rare": rare, "names": names}


def open_map(browser, path, query=""):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get_log("performance")  # drop what an earlier page logged
    browser.get(path.as_uri() + query)
    WebDriverWait(browser, 30).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true"
    )
    return browser.find_element(By.ID, "map")


def visible_labels(browser) -> list[dict]:
    return browser.execute_script(
        """return [...document.querySelectorAll('#labels .label')]
             .filter(e => getComputedStyle(e).display !== 'none')
             .map(e => { const r = e.getBoundingClientRect();
                         return {text: e.textContent, layer: +e.dataset.layer, left: r.left,
                                 right: r.right, top: r.top, bottom: r.bottom}; });"""
    )


def overlapping(boxes: list[dict]) -> list[tuple[str, str]]:
    return [
        (a["text"], b["text"])
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if a["left"] < b["right"] and b["left"] < a["right"]
        and a["top"] < b["bottom"] and b["top"] < a["bottom"]
    ]  # fmt: skip


def test_the_map_makes_no_network_request_from_file_url(browser, demo_map):
    open_map(browser, demo_map["path"])
    time.sleep(0.5)  # anything the page would fetch after loading
    sent = [json.loads(entry["message"])["message"] for entry in browser.get_log("performance")]
    urls = [
        m["params"]["request"]["url"] for m in sent if m["method"] == "Network.requestWillBeSent"
    ]
    assert urls == [demo_map["path"].as_uri()]  # the log works: it saw the page, and only it
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def test_initial_view_fits_points_and_labels_and_labels_never_overlap(browser, demo_map):
    canvas = open_map(browser, demo_map["path"])
    # no GPU here: WebGL would run in software, where the pixel rasteriser is faster
    assert canvas.get_attribute("data-renderer") == "canvas2d"
    assert canvas.get_attribute("data-drawn") == "3000"
    rect = browser.execute_script("return arguments[0].getBoundingClientRect()", canvas)
    spots = browser.execute_script(
        "const m = window.textClusterMap; return [...Array(m.count).keys()].map(m.position)"
    )
    xs, ys = np.array([p["x"] for p in spots]), np.array([p["y"] for p in spots])
    assert xs.min() >= rect["left"] and xs.max() <= rect["right"]
    assert ys.min() >= rect["top"] and ys.max() <= rect["bottom"]
    layers_seen = []
    i = int(np.flatnonzero(demo_map["labels"] == 0)[0])  # zoom in around a cluster
    for step, factor in enumerate((1.0, 2.5, 2.0)):  # whole map, then two zooms in
        if factor != 1.0:
            spot = browser.execute_script(f"return window.textClusterMap.position({i})")
            browser.execute_script(
                f"window.textClusterMap.zoom({factor}, {spot['x']}, {spot['y']})"
            )
        boxes = visible_labels(browser)
        assert boxes and not overlapping(boxes), (step, overlapping(boxes))
        for b in boxes:  # never cut off at the edges
            assert rect["left"] <= b["left"] and b["right"] <= rect["right"]
            assert rect["top"] <= b["top"] and b["bottom"] <= rect["bottom"]
        layers_seen.append(min(b["layer"] for b in boxes))
        if step == 0:  # zoomed out: every headline topic is named, large
            assert sorted(b["text"] for b in boxes if b["layer"] == 0) == sorted(TOPICS)
    assert layers_seen == [0, 1, 2]  # finer layers as one zooms in: headline, middle, clusters


def test_search_finds_words_in_texts_and_clears_the_tooltip(browser, demo_map):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    canvas = open_map(browser, demo_map["path"])
    rect = browser.execute_script("return arguments[0].getBoundingClientRect()", canvas)
    i = demo_map["rare"][0]
    target = browser.execute_script(f"return window.textClusterMap.position({i})")
    ActionChains(browser).move_to_element_with_offset(
        canvas,
        int(target["x"] - rect["left"] - rect["width"] / 2),
        int(target["y"] - rect["top"] - rect["height"] / 2),
    ).perform()
    tooltip = browser.find_element(By.ID, "tooltip")
    WebDriverWait(browser, 5).until(lambda d: tooltip.is_displayed())
    assert tooltip.find_element(By.TAG_NAME, "code").text.startswith("id-")

    box = browser.find_element(By.ID, "search")
    box.send_keys(RARE)
    assert not tooltip.is_displayed()  # the old tooltip does not outlive the search
    status = browser.find_element(By.ID, "status")
    assert status.get_attribute("data-text-matches") == str(len(demo_map["rare"]))
    assert status.get_attribute("data-label-matches") == "0"  # no label says it
    listed = browser.find_elements(By.CSS_SELECTOR, "#texts-list li")
    assert [li.get_attribute("data-id") for li in listed] == [
        demo_map["ids"][i] for i in demo_map["rare"]
    ]
    box.clear()
    box.send_keys("board games")  # a headline topic's label: its 5 clusters light up
    assert status.get_attribute("data-label-matches") == "5"
    assert status.get_attribute("data-matches") == "5"


def test_only_this_topic_then_show_all_and_list_a_clusters_texts(browser, demo_map):
    from selenium.webdriver.common.by import By

    canvas = open_map(browser, demo_map["path"])
    labels = demo_map["labels"]
    fonts = TOPICS.index("fonts")
    topic_row = browser.find_element(
        By.XPATH, "//div[contains(@class,'topic')][span[@class='name' and text()='fonts']]"
    )
    topic_row.find_element(By.CLASS_NAME, "only").click()
    in_topic = int(((labels >= fonts * 5) & (labels < fonts * 5 + 5)).sum())
    assert canvas.get_attribute("data-drawn") == str(in_topic)
    shown = {b["text"] for b in visible_labels(browser)}
    assert shown and all(t.startswith("fonts") for t in shown)  # the others' labels go too
    browser.find_element(By.ID, "show-all").click()
    assert canvas.get_attribute("data-drawn") == "3000"

    row = browser.find_element(By.CSS_SELECTOR, '#legend .row.cluster[data-cluster="7"]')
    row.find_element(By.CLASS_NAME, "name").click()
    listed = browser.find_elements(By.CSS_SELECTOR, "#texts-list li")
    expected = [demo_map["ids"][i] for i in np.flatnonzero(labels == 7)]
    assert [li.get_attribute("data-id") for li in listed] == expected
    assert expected[0] in listed[0].text  # the id is shown with the text


def test_a_box_selection_downloads_the_csv_of_its_text_ids(browser, demo_map):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    canvas = open_map(browser, demo_map["path"])
    rect = browser.execute_script("return arguments[0].getBoundingClientRect()", canvas)
    spots = browser.execute_script(
        "const m = window.textClusterMap; return [...Array(m.count).keys()].map(m.position)"
    )
    xs, ys = np.array([p["x"] for p in spots]), np.array([p["y"] for p in spots])
    # a box around the first headline topic's clusters, from the canvas's centre outwards
    cx, cy = rect["left"] + rect["width"] / 2, rect["top"] + rect["height"] / 2
    x0, y0, x1, y1 = cx + 40, cy - 150, cx + 400, cy + 150

    def within(margin: float) -> set[str]:
        box = (xs >= x0 - margin) & (xs <= x1 + margin) & (ys >= y0 - margin) & (ys <= y1 + margin)
        return {demo_map["ids"][i] for i in np.flatnonzero(box)}

    # the mouse moves by whole pixels: points within 2 px of the edges may go either way
    surely, maybe = within(-2), within(2)
    assert 100 < len(surely) < 3000
    centre = (rect["width"] / 2, rect["height"] / 2)
    (
        ActionChains(browser)
        .key_down(Keys.SHIFT)
        .move_to_element_with_offset(
            canvas, int(x0 - rect["left"] - centre[0]), int(y0 - rect["top"] - centre[1])
        )
        .click_and_hold()
        .move_by_offset(int(x1 - x0) // 2, int(y1 - y0) // 2)
        .move_by_offset(int(x1 - x0) - int(x1 - x0) // 2, int(y1 - y0) - int(y1 - y0) // 2)
        .release()
        .key_up(Keys.SHIFT)
        .perform()
    )  # fmt: skip
    count = int(browser.find_element(By.ID, "selection").get_attribute("data-count"))
    assert len(surely) <= count <= len(maybe)
    target = browser.downloads / "selected_texts.csv"
    target.unlink(missing_ok=True)
    browser.find_element(By.ID, "download").click()
    for _ in range(100):
        if target.exists() and target.stat().st_size:
            break
        time.sleep(0.1)
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    got = {r["text_id"] for r in rows}
    assert surely <= got <= maybe and len(rows) == len(got) == count
    first = demo_map["ids"].index(rows[0]["text_id"])
    assert rows[0]["summary_label"] == demo_map["names"][int(demo_map["labels"][first])]

    # the same box drawn as a lasso (a polygon through its corners) selects the same texts
    browser.find_element(By.ID, "clear-selection").click()
    assert browser.find_element(By.ID, "selection").get_attribute("data-count") == "0"
    browser.find_element(By.ID, "lasso-mode").click()
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0 + 1)]
    lasso = ActionChains(browser).move_to_element_with_offset(
        canvas, int(x0 - rect["left"] - centre[0]), int(y0 - rect["top"] - centre[1])
    )
    lasso.click_and_hold()
    for (ax, ay), (bx, by) in itertools.pairwise(corners):
        lasso.move_by_offset(int(bx - ax), int(by - ay))
    lasso.release().perform()
    count = int(browser.find_element(By.ID, "selection").get_attribute("data-count"))
    assert len(surely) <= count <= len(maybe)
    browser.find_element(By.ID, "lasso-mode").click()


def drawn_colour_matches(browser, demo_map) -> None:
    """The pixel under the most central point of cluster 0 has cluster 0's colour."""
    from PIL import Image

    browser.execute_script("document.getElementById('labels').style.display = 'none'")
    labels = demo_map["labels"]
    mine = np.flatnonzero(labels == 0)
    spots = browser.execute_script(
        f"return {mine.tolist()}.map(i => window.textClusterMap.position(i))"
    )
    xy = np.array([[p["x"], p["y"]] for p in spots])
    x, y = xy[np.argmin(((xy - np.median(xy, axis=0)) ** 2).sum(axis=1))]
    image = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
    ratio = image.width / browser.execute_script("return window.innerWidth")
    got = image.getpixel((int(x * ratio), int(y * ratio)))
    colour = browser.execute_script("return window.textClusterMap.colour(0)")
    assert max(abs(a - b) for a, b in zip(got, colour, strict=True)) < 40, (got, colour)
    browser.execute_script("document.getElementById('labels').style.display = ''")


def test_points_are_drawn_in_their_colours_with_webgl_and_without(browser, demo_map):
    canvas = open_map(browser, demo_map["path"], "?webgl")
    assert canvas.get_attribute("data-renderer") == "webgl"
    assert canvas.get_attribute("data-drawn") == "3000"
    drawn_colour_matches(browser, demo_map)
    canvas = open_map(browser, demo_map["path"], "?canvas2d")
    assert canvas.get_attribute("data-renderer") == "canvas2d"
    assert canvas.get_attribute("data-drawn") == "3000"
    drawn_colour_matches(browser, demo_map)
