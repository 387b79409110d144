"""Take the README's pictures of a build's interactive map (docs/images/map*.png).

Opens the map (var map_path, `output/text_clusters.html` after `make demo`) from `file://` in
Debian's headless Chromium through Selenium (what `make test` installs; started as
`bench/maps.py` starts it), at 1400 x 900:

- `map.png`: the map as it opens;
- `map-search.png`: the map searched for a word (`--word`, "thunderbird": in a few demo
  texts, in no label), zoomed in (`--zoom` doublings) around the text that contains it with
  the most such texts near it.

    .venv/bin/python scripts/map_pictures.py output/text_clusters.html docs/images

The PNG (`output/text_clusters.png`) and the hierarchy (`scripts/hierarchy_picture.py`) are
files of their own; copy or draw them beside these.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def wait_ready(browser, path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(path.resolve().as_uri())
    WebDriverWait(browser, 60).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true"
    )


def matching(path: Path, word: str) -> list[int]:
    """Indices of the map's points whose (shown) text contains ``word``, any case."""
    page = path.read_text(encoding="utf-8")
    data = json.loads(page.split('type="application/json">')[1].split("</script>")[0])
    return [i for i, text in enumerate(data["t"]) if word.lower() in text.lower()]


def densest(browser, hits: list[int]) -> dict:
    """The page position of the match with the most other matches near it (the nearest sum
    of distances): where the zoom goes."""
    spots = [browser.execute_script(f"return window.textClusterMap.position({i})") for i in hits]
    return min(
        spots,
        key=lambda a: sum(((a["x"] - b["x"]) ** 2 + (a["y"] - b["y"]) ** 2) ** 0.5 for b in spots),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("map", type=Path, help="the map's HTML file")
    parser.add_argument("folder", type=Path, help="where map.png and map-search.png go")
    parser.add_argument("--word", default="thunderbird")
    parser.add_argument("--zoom", type=int, default=2, help="doublings around the matches")
    parser.add_argument("--size", default="1400x900")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    hits = matching(args.map, args.word)
    if not hits:
        raise SystemExit(f"no text of {args.map} contains {args.word!r}: choose another --word")

    from selenium.webdriver.common.by import By

    sys.path.insert(0, str(BENCH))
    from maps import browser as open_browser  # the headless Chromium of `make bench-maps`

    args.folder.mkdir(parents=True, exist_ok=True)
    browser = open_browser(width, height)
    try:
        wait_ready(browser, args.map)
        time.sleep(0.5)  # the first frame's labels
        browser.save_screenshot(str(args.folder / "map.png"))
        browser.find_element(By.ID, "search").send_keys(args.word)
        spot = densest(browser, hits)  # stays where it is drawn; the rest spreads out
        for _ in range(args.zoom):
            browser.execute_script(f"window.textClusterMap.zoom(2, {spot['x']}, {spot['y']})")
        time.sleep(0.5)
        browser.save_screenshot(str(args.folder / "map-search.png"))
    finally:
        browser.quit()
    print(f"{args.folder / 'map.png'}, {args.folder / 'map-search.png'} ({len(hits)} matches)")


if __name__ == "__main__":
    main()
