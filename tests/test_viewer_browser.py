"""The viewer in a real browser: headless Chromium (Debian's package) driven by Playwright.

Each page is opened from ``file://``; every test checks that no request
left the page (only the file itself was read) and that the console has no
error (a CSP violation would be one: the inline script and style run only by
their hashes). Without Chromium or Playwright these tests skip with the
reason; under CI=true (.ci/run installs both) they fail instead.
"""

from __future__ import annotations

import re
import runpy

import pytest

import gradviz
from gradviz import Value
from gradviz.cli import main
from gradviz.exporters.html import to_html

from helpers import EXAMPLES, worked_example
from viewer_pages import HOSTILE, browser_or_skip

pytestmark = pytest.mark.renderer


@pytest.fixture(scope="module")
def browser():
    manager, browser = browser_or_skip()
    yield browser
    browser.close()
    manager.stop()


class Opened:
    """A page opened from a file, with what it asked for and what it logged."""

    def __init__(self, browser, path):
        self.url = path.resolve().as_uri()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page = browser.new_page(viewport={"width": 1400, "height": 800})
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready='1']")

    def text(self, selector):
        return self.page.text_content(selector)

    def close(self):
        assert self.requests == [self.url], "a request left the page"
        assert self.errors == []
        self.page.close()


@pytest.fixture
def opened(browser):
    pages = []

    def open_(path):
        pages.append(Opened(browser, path))
        return pages[-1]

    yield open_
    for p in pages:
        p.close()


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _click_node(o, pos):
    o.page.click(f'#stage svg g.node.v[data-pos="{pos}"]')


def test_click_step_and_navigate_the_worked_example(tmp_path, opened):
    # ids: a n0, b n1, e n2, c n3, d n4, f n5, L n6 (tests/helpers.py)
    L, _ = worked_example()
    L.backward()
    o = opened(_write(tmp_path, "L.html", to_html(gradviz.capture(L))))
    _click_node(o, 0)
    assert o.text("#p-label") == "a" and o.text("#p-id") == "n0" and o.text("#p-grad") == "6" and o.text("#p-data") == "2"
    # its one contribution: from e, local derivative b = -3 times e.grad -2
    assert [td.text_content() for td in o.page.query_selector_all("#p-contrib tr:nth-child(2) td")][1:] == ["-3", "-2", "6"]
    assert o.text("#p-contrib-sum") == "6"
    o.page.keyboard.press("c")  # to its consumer e
    assert o.text("#p-label") == "e"
    o.page.keyboard.press("o")
    o.page.keyboard.press("o")  # e's operands: a, then b
    assert o.text("#p-label") == "b"

    def running():
        return o.page.get_attribute("#stage svg g.running", "data-pos")

    def svg_grad(pos):
        return o.page.text_content(f'#stage svg g.node.v[data-pos="{pos}"] text:nth-of-type(3)')

    for _ in range(2):  # every grad 0, then the seed
        o.page.keyboard.press("ArrowRight")
    assert o.text("#step-pos") == "seed / 3" and svg_grad(6) == "grad 1.0000" and svg_grad(0) == "grad 0.0000"
    o.page.keyboard.press("ArrowRight")  # call 1: L's _backward gives d -2 and f 4
    assert running() == "6" and svg_grad(4) == "grad -2.0000" and svg_grad(5) == "grad 4.0000" and svg_grad(0) == "grad 0.0000"
    o.page.keyboard.press("ArrowRight")
    o.page.keyboard.press("ArrowRight")  # call 3: e's _backward gives a 6 and b -4
    assert running() == "2" and svg_grad(0) == "grad 6.0000" and o.text("#p-grad-now") == "-4"  # b is selected
    annotations = [t.text_content() for t in o.page.query_selector_all("#stage svg text.ann")]
    assert annotations == ["0.0000 + 6.0000 = 6.0000", "0.0000 + -4.0000 = -4.0000"]
    o.page.keyboard.press("ArrowLeft")  # back to call 2: a not yet reached
    assert running() == "4" and svg_grad(0) == "grad 0.0000"
    o.page.click("#step-off")
    assert o.page.query_selector("#stage svg g.running") is None and svg_grad(0) == "grad 6.0000"


def test_search_pan_and_zoom(tmp_path, opened):
    L, _ = worked_example()
    L.backward()
    o = opened(_write(tmp_path, "L.html", to_html(gradviz.capture(L))))
    o.page.fill("#search", "c")
    assert "c (n3)" in [b.text_content().strip() for b in o.page.query_selector_all("#results button")]
    o.page.fill("#search", "n3")
    o.page.keyboard.press("Enter")
    assert o.text("#p-label") == "c" and o.text("#p-grad") == "-2"
    box = o.page.get_attribute("#stage svg", "viewBox")
    o.page.mouse.move(500, 400)
    o.page.mouse.wheel(0, -400)  # zoom in
    zoomed = [float(x) for x in o.page.get_attribute("#stage svg", "viewBox").split()]
    assert zoomed[2] < float(box.split()[2]) / 1.5
    o.page.mouse.move(500, 400)
    o.page.mouse.down()
    o.page.mouse.move(600, 450, steps=4)
    o.page.mouse.up()
    panned = [float(x) for x in o.page.get_attribute("#stage svg", "viewBox").split()]
    assert panned[0] < zoomed[0] and panned[2] == zoomed[2]
    o.page.click("#fit")
    assert o.page.get_attribute("#stage svg", "viewBox") == box


def test_hostile_labels_render_literally(tmp_path, opened):
    leaves = [Value(float(i), label=h) for i, h in enumerate(HOSTILE)]
    root = sum(leaves[1:], leaves[0])
    root.backward()
    o = opened(_write(tmp_path, "hostile.html", to_html(gradviz.capture(root))))
    assert o.page.evaluate("window.__pwned") is None
    assert o.page.evaluate("document.querySelectorAll('img, iframe, object, embed, a').length") == 0
    assert o.page.evaluate("document.scripts.length") == 2
    for i, label in enumerate(HOSTILE):
        _click_node(o, 0 if i == 0 else 2 * i - 1)  # leaves are n0, then n1, n3, n5, ... (each sum follows its leaf)
        shown = label.replace("\u202e", "\\u202e")
        assert o.text("#p-label") == shown
    texts = o.page.evaluate("Array.from(document.querySelectorAll('#stage svg text'), t => t.textContent)")
    assert HOSTILE[0] in texts and HOSTILE[1] in texts
    o.page.fill("#search", "onerror")
    o.page.keyboard.press("Enter")
    assert o.text("#p-label") == HOSTILE[1]
    assert o.page.evaluate("window.__pwned") is None


def test_open_a_neuron_box(tmp_path, opened):
    ns = runpy.run_path(str(EXAMPLES / "mlp.py"))
    ns["loss"].backward()
    graph = gradviz.capture(ns["loss"])
    o = opened(_write(tmp_path, "mlp.html", to_html(graph, inner_time=600)))  # not timed (a busy machine)
    box = o.page.query_selector('#stage svg g.ph:has(text:text-matches("^L0.N1 \\\\(neuron\\\\)"))')
    box.click()
    assert [b.text_content() for b in o.page.query_selector_all("#crumbs button")] == ["whole graph", "L0.N1 (neuron): 43 nodes"]
    # inside: the neuron's parameter w0, drawn as itself
    w0 = next(i for i, n in enumerate(graph) if n.label == "L0.N1.w0")
    _click_node(o, w0)
    node = graph.nodes[graph_ids(graph)[w0]]
    assert o.text("#p-label") == "L0.N1.w0" and float(o.text("#p-grad")) == node.grad
    assert len(o.page.query_selector_all("#p-consumers li")) == 8  # one use per point
    o.page.click("#back")
    assert o.page.query_selector_all("#crumbs button") == []


def graph_ids(graph):
    return list(graph.nodes)


def test_check_findings_jump_to_their_nodes(tmp_path, opened, capsys):
    out = tmp_path / "check.html"
    assert main(["check", str(EXAMPLES / "buggy_accumulation.py"), "--backward", "-o", str(out)]) == 1
    o = opened(out)
    buttons = o.page.query_selector_all("#findings button.finding")
    assert [b.text_content() for b in buttons] == ["a (n0)", "b (n1)"]
    buttons[1].click()
    assert o.text("#p-label") == "b" and o.text("#p-role") == "culprit" and o.text("#p-grad") == "-2"
    assert "missing-accumulation" in o.text("#p-findings")
    for _ in range(5):  # to call 3: d's _backward overwrites a and b
        o.page.keyboard.press("ArrowRight")
    assert o.page.get_attribute("#stage svg g.running", "data-pos") == "2"
    ann = [t.text_content() for t in o.page.query_selector_all("#stage svg text.ann.overwrote")]
    assert ann == ["-6.0000 → 3.0000 (overwrote: =)", "-6.0000 → -2.0000 (overwrote: =)"]
    assert "overwrote" in o.text("#step-adds")


def test_diff_panel_shows_both_sides(tmp_path, opened, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["snapshot", str(EXAMPLES / "buggy_accumulation.py"), "--backward", "-o", "buggy.json"]) == 0
    assert main(["snapshot", str(EXAMPLES / "fixed_accumulation.py"), "--backward", "-o", "fixed.json"]) == 0
    assert main(["diff", "buggy.json", "fixed.json", "-o", "diff.html"]) == 1
    o = opened(tmp_path / "diff.html")
    _click_node(o, 0)
    assert o.text("#p-role") == "changed"
    assert re.sub(r"\s+", " ", o.text("#p-diff-grad")) == "A 3 B -3"


def test_a_value_used_twice_gets_two_additions(tmp_path, opened):
    a = Value(3.0, label="a")
    b = a + a
    b.label = "b"
    b.backward()
    o = opened(_write(tmp_path, "b.html", to_html(gradviz.capture(b))))
    for _ in range(3):
        o.page.keyboard.press("ArrowRight")
    ann = [t.text_content() for t in o.page.query_selector_all("#stage svg text.ann")]
    assert ann == ["slot 0: 0.0000 + 1.0000 = 1.0000", "slot 1: 1.0000 + 1.0000 = 2.0000"]


@pytest.mark.slow
def test_bench_viewer_prints_a_row_per_page(browser):
    import subprocess
    import sys

    from helpers import REPO

    done = subprocess.run([sys.executable, "bench/viewer.py", "--quick", "--runs", "1"], cwd=REPO, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    ms = r"\d+ ms"
    assert re.search(rf"^worked example +7 +\d+\.\d s +\d+ kB +{ms} +{ms} +-$", done.stdout, flags=re.M), done.stdout
    assert re.search(rf"^MLP example \(default\) +2,448 +\d+\.\d s +\d+\.\d MB +{ms} +{ms} +{ms}$", done.stdout, flags=re.M), done.stdout


def test_copies_of_a_shared_operand_are_the_node(tmp_path, opened):
    # x = Value(1.0); y = x; 1,000 times y = y * x: x (n0, position 0) is drawn once beside each consumer
    x = Value(1.0, label="x")
    y = x
    for _ in range(1000):
        y = y * x
    y.backward()
    o = opened(_write(tmp_path, "shared.html", to_html(gradviz.capture(y))))
    copies = o.page.query_selector_all('#stage svg g.node.v[data-pos="0"]')
    assert len(copies) >= 90
    copies[5].click()
    assert o.text("#p-id") == "n0" and o.text("#p-label") == "x" and o.text("#p-grad") == "1001"  # y = x ** 1001

    def copy_grads():
        return {c.query_selector("text:nth-of-type(3)").text_content() for c in copies}

    def annotation_beside(consumer):
        """The one annotation on x, and whether it sits just above the copy beside ``consumer``."""
        (ann,) = o.page.query_selector_all('#stage svg text.ann[data-pos="0"]')
        a = ann.bounding_box()
        b = o.page.query_selector(f'#stage svg g.node.v[data-pos="0"][data-beside="{consumer}"]').bounding_box()
        return ann.text_content(), a["y"] < b["y"] and b["y"] - (a["y"] + a["height"]) < 20 and abs(a["x"] - b["x"]) < 10

    for _ in range(3):  # all 0, the seed, call 1: n1000 = n999 * x gives x 0 + 1 * 1
        o.page.keyboard.press("ArrowRight")
    assert o.page.get_attribute("#stage svg g.running", "data-pos") == "1000"
    assert len(o.page.query_selector_all("#stage svg rect.got")) == len(copies) + 1  # every copy of x, and n999
    assert len(o.page.query_selector_all("#stage svg rect.sel")) == len(copies)  # x is selected: all its copies
    assert annotation_beside(1000) == ("0.0000 + 1.0000 = 1.0000", True)
    assert copy_grads() == {"grad 1.0000"}
    o.page.keyboard.press("ArrowRight")  # call 2: n999's _backward, x 1 -> 2
    assert o.page.get_attribute("#stage svg g.running", "data-pos") == "999"
    assert annotation_beside(999) == ("1.0000 + 1.0000 = 2.0000", True)
    assert copy_grads() == {"grad 2.0000"}
    o.page.screenshot(path=str(tmp_path / "shared.png"))
