"""How long the web page's map takes to draw many bins, in headless chromium.

Serves ``server/web`` with Python's own HTTP server (no binsight server needed), loads the map
component and times, for 1,000 and 5,000 bins: a full redraw, and one drag step (a transform only).
Prints the median of 15 runs each. Needs Debian's /usr/bin/chromium.

    .venv/bin/python bench/web_map_render.py
"""

from __future__ import annotations

import functools
import http.server
import threading

from playwright.sync_api import sync_playwright

from binsight.server.web import STATIC_DIR

ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

SCRIPT = """async (n) => {
  const host = document.createElement('div');
  host.style.cssText = 'width: 900px; height: 520px';
  document.body.append(host);
  const { MapView } = await import('/static/js/mapview.js');
  const m = new MapView(host, { label: 'bench', describe: () => document.createTextNode('') });
  let seed = 1;
  const rand = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const bins = Array.from({ length: n }, (_, i) => ({ id: `b${i}`, lat: 52.3 + rand() * 0.2,
    lon: 4.8 + rand() * 0.3, fill: rand(), online: i % 9 !== 0 }));
  m.setBins(bins);
  m.fitAll();
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const full = [];
  const drag = [];
  for (let k = 0; k < 15; k += 1) {
    let t0 = performance.now();
    m.render();
    full.push(performance.now() - t0);
    t0 = performance.now();
    m.panBy(3, 2, true);
    drag.push(performance.now() - t0);
  }
  host.remove();
  return { full: median(full), drag: median(drag) };
}"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    handler = functools.partial(_QuietHandler, directory=str(STATIC_DIR.parent))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(base + "/static/index.html")
            for n in (1000, 5000):
                r = page.evaluate(SCRIPT, n)
                full, drag = r["full"], r["drag"]
                print(f"{n:>5} bins: full redraw {full:.1f} ms, drag step {drag:.2f} ms (median of 15)")
            browser.close()
    finally:
        httpd.shutdown()


if __name__ == "__main__":
    main()
