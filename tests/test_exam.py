"""``gradviz exam``: the report card of a whole engine.

What is asserted, engine by engine:

* gradviz's own ``Value``: every test passes (the battery's control);
* every engine of the corpus (tests/real_engines): the tests that fail or
  crash are exactly the real differences listed in :data:`REAL_DIFFERENCES`,
  each explained there; nothing else fails;
* every buggy engine (tests/buggy_engines): its bug is found and blamed on
  the right method with the right kind (:data:`BUGS`), and on no other;
* safety: an engine that loops forever, exits or segfaults in one op has
  those tests reported as crashed, and the exam goes on;
* the CLI: exit status 0 / 1 / 2, ``--json`` valid against the shipped
  schema, ``-o card.html`` a page that parses.

Exams are slow-ish (a worker process, a 10,000-op chain), so each target is
examined once per session, two at a time, in :func:`card`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest

import gradviz
from gradviz.analysis.exam import ExamReport, exam, schema, target_of
from gradviz.errors import UsageError

from real_engines.specs import ENGINES

HERE = Path(__file__).parent
ROOT = HERE.parent

#: Every real difference the exam finds in the corpus, by engine: test id -> why it is real.
RECURSIVE = {
    "deep/chain": "its backward() sorts the graph recursively: RecursionError at 10,000 nodes",
    "deep/wide-sum": "the same recursion: a sum of 1,000 leaves folded left is 1,000 deep",
}
TANH_OVERFLOW = {"edge/tanh(1000)": "tanh via (exp(2x) - 1) / (exp(2x) + 1): math.exp(2000) raises OverflowError"}
SIGMOID_OVERFLOW = {"edge/sigmoid(-1000)": "sigmoid via 1 / (1 + exp(-x)): math.exp(1000) raises OverflowError"}
KAITORCH = {
    **{f"tanh/{t}": "tanh's derivative taken at its output: 1 - tanh(tanh(x))**2"
       for t in ("tanh(a)@a=0.6", "tanh(a)@a=-1.2", "tanh(a)*c@a=0.6")},
    **{f"sigmoid/{t}": "sigmoid's derivative taken at its output: s(s(x)) * (1 - s(s(x)))"
       for t in ("sigmoid(a)@a=-0.4", "sigmoid(a)@a=1.1", "sigmoid(a)*c@a=-0.4")},
    "reuse/tanh(a)*tanh(a)+a@a=0.6": "the same tanh derivative",
    "reuse/sigmoid(a)*sigmoid(a)+a@a=-0.4": "the same sigmoid derivative",
    "edge/tanh(-1000)": "the same: 1 - tanh(-1)**2 = 0.42 where the derivative is 0",
    "edge/sigmoid(-1000)": "the same: s(0) * (1 - s(0)) = 0.25 where the derivative is 0",
    "edge/sigmoid(1000)": "the same: s(1) * (1 - s(1)) = 0.197 where the derivative is 0",
    # applied by name, v.activation('ELU'): outside the op table, so finite differences find them
    **{f"elu/{t}": "ELU's derivative taken at its output" for t in ("elu(a)@a=-0.7", "elu(a)*c@a=-0.7")},
    **{f"swish/{t}": "swish's derivative taken at its output"
       for t in ("swish(a)@a=0.7", "swish(a)@a=-1.3", "swish(a)*c@a=0.7")},
    "reuse/swish(a)*swish(a)+a@a=0.7": "the same swish derivative",
    "reuse/elu(a)*elu(a)+a@a=-0.7": "the same ELU derivative (the checker knows elu: it sees the local derivative)",
}
GAMMA = {
    f"gamma_actual/{t}": "gamma_actual's backward multiplies by its digamma_internal, which is off by about 2.4x "
    "(finite differences over its own numerical gamma disagree)"
    for t in ("gamma_actual(a)@a=0.7", "gamma_actual(a)@a=1.3", "gamma_actual(a)*c@a=0.7")
} | {"reuse/gamma_actual(a)*gamma_actual(a)+a@a=0.7": "the same gamma derivative"}
REAL_DIFFERENCES: dict[str, dict[str, str]] = {
    "micrograd": RECURSIVE,
    "micrograd-andrews": RECURSIVE,
    "omnigrad": {**RECURSIVE, **TANH_OVERFLOW, **SIGMOID_OVERFLOW, **GAMMA},
    "propgrad": RECURSIVE,
    "tinymlp": RECURSIVE,
    "scalargrad": {**RECURSIVE, **SIGMOID_OVERFLOW},
    "nano-autograds": RECURSIVE,
    "tonygrad": {**RECURSIVE, **TANH_OVERFLOW},
    "learngrad": RECURSIVE,
    "opengrad": {**RECURSIVE, **TANH_OVERFLOW},
    "bitgrad": {**RECURSIVE, **TANH_OVERFLOW},
    "kaitorch": {**RECURSIVE, **TANH_OVERFLOW, **KAITORCH},
    "femtograd": {**RECURSIVE, **TANH_OVERFLOW},
    "microgpt-style (tests/real_engines/microgpt.py)": {},
}

#: Each buggy engine: the (method, kind) pairs its card must blame, and nothing else.
BUGS: dict[str, set[tuple[str, str]]] = {
    "overwrite": {("__add__", "missing-accumulation"), ("__mul__", "missing-accumulation"), ("tanh", "missing-accumulation")},
    "wrong_local": {("__mul__", "wrong-local-derivative"), ("tanh", "wrong-local-derivative"),
                    ("__pow__", "wrong-local-derivative"), ("exp", "wrong-local-derivative")},
    "forward_bug": {("__pow__", "forward-inconsistent")},
    "not_seeded": {("backward", "not-seeded")},
    "set_operands": {("__add__", "missing-accumulation")},
}

_POOL = ThreadPoolExecutor(max_workers=2)  # two exams at a time: each is mostly a worker process
_CARDS: dict[tuple[str, tuple[str, ...] | None], Future[ExamReport]] = {}


def _spec(e) -> str:
    if e.module.startswith("real_engines."):  # ours, in tests/: by path, so the worker needs no PYTHONPATH
        return f"{HERE / 'real_engines' / e.module.rpartition('.')[2]}.py:{e.cls}"
    return f"{e.module}:{e.cls}"


def _target(name: str) -> str:
    return next(_spec(e) for e in ENGINES if e.dist == name)


def card(target: str, only: tuple[str, ...] | None = None, timeout: float = 60.0) -> ExamReport:
    """The exam of ``target`` (run once per session; the corpus is queued on first use)."""
    if not _CARDS:
        for e in ENGINES:
            _queue(_spec(e), None, 60.0)
        for bug in (*BUGS, "base", "kink", "recursive", "wrong_order", "value_eq"):
            _queue(f"tests/buggy_engines/{bug}.py:Value", None, 60.0)
    return _queue(target, only, timeout).result()


def _queue(target: str, only: tuple[str, ...] | None, timeout: float) -> Future[ExamReport]:
    if target.startswith("tests/"):
        target = str(ROOT / target)
    key = (target, only)
    if key not in _CARDS:
        _CARDS[key] = _POOL.submit(exam, target, timeout=timeout, only=list(only) if only else None)
    return _CARDS[key]


def bad(report: ExamReport) -> dict[str, str]:
    """Test id -> status, of every test that failed or crashed."""
    return {r["id"]: r["status"] for r in report.results if r["status"] in ("fail", "crashed")}


def blamed(report: ExamReport) -> set[tuple[str, str]]:
    return {(item["blame"], item["kind"]) for item in report.summary()}


# -- gradviz's own Value: the control -------------------------------------------------------


def test_gradviz_value_passes_every_test_it_can_take():
    report = card("gradviz.engine.value:Value")
    assert report.ok and not bad(report)
    statuses = {r["id"]: r["status"] for r in report.results}
    # what it offers is examined: the chain, the wide sum, the edges, backward twice, its MLP
    for tid in ("deep/chain", "deep/wide-sum", "backward/twice", "backward/zero_grad", "mlp/MLP(3,[4,4,1])",
                "edge/tanh(1000)", "edge/exp(1000)", "edge/log(0)", "edge/a/b@b=0", "reuse/a+a", "**/a**b"):
        assert statuses[tid] == "pass", tid
    # what it lacks is n/a with the reason, not a pass; what it has passes
    for op in ("sin", "cos", "tan", "sqrt", "abs"):
        r = report.result(f"{op}/{op}(a)@a={dict(sin=0.9, cos=0.9, tan=0.4, sqrt=1.7, abs=1.3)[op]}")
        if callable(getattr(gradviz.Value, op, None)):
            assert r["status"] == "pass", r
        else:
            assert r["status"] == "n/a" and f"`{op}`" in r["reason"], r
    assert report.engine["features"]["mlp"].endswith("nn.MLP(3, [4, 4, 1])")


# -- the corpus: only real differences fail ------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REAL_DIFFERENCES))
def test_corpus_engine_fails_only_where_it_really_differs(name):
    report = card(_target(name))
    assert set(bad(report)) == set(REAL_DIFFERENCES[name])
    for tid in RECURSIVE.keys() & bad(report).keys():
        r = report.result(tid)
        assert r["status"] == "crashed" and "RecursionError" in r["error"]
    # every engine has + and *, and the lecture's reuse tests pass on all of them
    for tid in ("+/a+b", "*/a*b", "reuse/a+a", "reuse/a*a", "reuse/(a*b)*(a+b)"):
        assert report.result(tid)["status"] == "pass", tid


def test_micrograd_card_notes_its_conventions():
    report = card("micrograd.engine:Value")
    # backward() adds onto old grads, interior nodes' too: a note, not a failure
    twice = report.result("backward/twice")
    assert twice["status"] == "note" and "adds onto the grads of an earlier backward()" in twice["notes"][0]
    assert report.result("edge/relu(0)")["status"] == "pass"  # micrograd takes relu'(0) = 0, as PyTorch
    assert report.result("edge/a/b@b=0")["status"] == "note"  # ZeroDivisionError: Python's convention
    assert report.result("**/a**b")["status"] == "n/a"
    assert "AssertionError: only supporting int/float powers" in report.engine["missing"]["vpow"]
    assert report.result("mlp/MLP(3,[4,4,1])")["status"] == "pass"
    assert blamed(report) == {("backward", "crashed")}
    assert "explicit stack" in report.summary()[0]["fix"]


def test_femtograd_relu_at_zero_is_a_note():
    report = card(_target("femtograd"))
    kink = report.result("edge/relu(0)")
    assert kink["status"] == "note" and "d/da = 1" in kink["notes"][0]
    assert report.engine["children_attr"] == "prev"


def test_kaitorch_tanh_and_sigmoid_are_wrong_local_derivatives():
    report = card(_target("kaitorch"))
    assert report.engine["features"]["tanh"] == "v.activation('tanh')"
    r = report.result("tanh/tanh(a)@a=0.6")
    [f] = r["findings"]
    assert (f["kind"], f["blame"]) == ("wrong-local-derivative", "tanh")
    # d tanh/dx at 0.6 is 1 - tanh(0.6)**2; kaitorch takes 1 - tanh(tanh(0.6))**2
    import math
    assert f["expected"] == pytest.approx(1 - math.tanh(0.6) ** 2, rel=1e-9)
    assert f["got"] == pytest.approx(1 - math.tanh(math.tanh(0.6)) ** 2, rel=1e-9)
    assert ("sigmoid", "wrong-local-derivative") in blamed(report)
    assert {"elu", "swish"} <= {blame for blame, _ in blamed(report)}
    assert report.engine["features"]["elu"] == "v.activation('ELU')"


def test_omnigrad_aliases_are_found():
    report = card(_target("omnigrad"))
    features = report.engine["features"]
    assert features["relu"] == "v.reLU()" and features["sigmoid"] == "v.sigmod()" and features["log"] == "v.ln()"
    assert report.result("relu/relu(a)@a=0.8")["status"] in ("pass", "note")


# -- the buggy engines: each bug named by its op and kind ----------------------------------


@pytest.mark.parametrize("bug", list(BUGS))
def test_buggy_engine_bug_is_named(bug):
    report = card(f"tests/buggy_engines/{bug}.py:Value")
    assert not report.ok
    faults = {pair for pair in blamed(report) if pair[1] != "crashed"}
    assert faults == BUGS[bug]


def test_base_and_kink_engines_pass():
    assert card("tests/buggy_engines/base.py:Value").ok
    kink = card("tests/buggy_engines/kink.py:Value")
    assert kink.ok
    r = kink.result("edge/relu(0)")
    assert r["status"] == "note" and "any of [0, 1] is valid" in r["notes"][0]


def test_backward_faults_are_blamed_on_backward():
    order = card("tests/buggy_engines/wrong_order.py:Value")
    assert ("backward", "wrong-order") in blamed(order)
    assert {blame for blame, _ in blamed(order)} == {"backward"}
    recursive = card("tests/buggy_engines/recursive.py:Value")
    assert {blame for blame, _ in blamed(recursive)} == {"backward"}
    assert recursive.result("deep/chain")["status"] == "crashed"
    merged = card("tests/buggy_engines/value_eq.py:Value")
    assert ("__eq__", "merged-nodes") in blamed(merged)


def test_overwrite_card_text():
    text = card("tests/buggy_engines/overwrite.py:Value").table()
    assert "`__mul__`'s `_backward` assigns (=) instead of adding (+=): a value used twice loses a contribution" in text
    assert "  fail     a * a" in text or "  fail    a * a" in text
    assert "a (n0)  missing-accumulation  grad      1.5  3" in text  # a * a at a = 1.5: kept 1.5 of 2 * 1.5


# -- safety: loops and crashes are contained -----------------------------------------------


def test_an_infinite_loop_is_stopped_and_the_exam_goes_on():
    only = ("+", "tanh/tanh(a)@a=0.6", "tanh/tanh(a)@a=-1.2", "reuse/a+a")
    report = card("tests/exam_engines/hang.py:Value", only=only, timeout=2.0)
    assert [(r["group"], r["status"]) for r in report.results] == [("+", "pass")] * 4 + [("tanh", "crashed")] * 2 + [("reuse", "pass")]
    for r in report.results[4:6]:
        assert "did not finish in 2 s" in r["error"]
    assert report.restarts == 2  # a new worker after each timeout
    assert ("tanh", "crashed") in blamed(report)


def test_exit_and_segfault_are_crashes_and_prints_do_not_break_the_worker():
    report = card("tests/exam_engines/dies.py:Value", only=("exp/exp(a)@a=0.7", "relu/relu(a)@a=0.8", "+", "*"))
    exp = report.result("exp/exp(a)@a=0.7")
    assert exp["status"] == "crashed" and "exit status 3" in exp["error"]
    relu = report.result("relu/relu(a)@a=0.8")
    assert relu["status"] == "crashed" and "SIGSEGV" in relu["error"]
    assert all(r["status"] == "pass" for r in report.results if r["group"] in ("+", "*"))  # + prints on stdout


def test_missing_forms_are_not_applicable_with_the_reason():
    report = card("tests/exam_engines/tiny.py:Value")
    assert report.ok
    r = report.result("+/a+2")
    assert r["status"] == "n/a" and "AttributeError" in r["reason"]
    assert report.result("+/a+b")["status"] == "pass"
    assert report.result("deep/wide-sum")["status"] == "pass"


# -- targets --------------------------------------------------------------------------------


def test_target_of_a_class_and_bad_targets():
    assert target_of(gradviz.Value) == "gradviz.engine.value:Value"
    import micrograd.engine
    from buggy_engines import overwrite

    assert target_of(micrograd.engine.Value) == "micrograd.engine:Value"
    assert target_of(overwrite.Value) == f"{HERE / 'buggy_engines' / 'overwrite.py'}:Value"  # not importable by name from elsewhere

    class Local:
        pass

    with pytest.raises(UsageError, match="not a class defined at the top of a module"):
        target_of(Local)
    with pytest.raises(UsageError, match="expected FILE.py:CLASS"):
        target_of("micrograd.engine")
    with pytest.raises(UsageError, match="no such file"):
        target_of("nowhere/engine.py:Value")
    with pytest.raises(UsageError, match="has no 'Nope'"):
        exam("micrograd.engine:Nope")
    with pytest.raises(UsageError, match="No module named"):
        exam("no_such_module_here:Value")
    with pytest.raises(UsageError, match="not a scalar value class|raises"):
        exam("fractions:Fraction")
    with pytest.raises(UsageError, match="no test in"):
        exam(f"{HERE / 'exam_engines' / 'tiny.py'}:Value", only=["nonsense"])


# -- JSON, HTML, CLI ------------------------------------------------------------------------


def test_json_report_follows_the_schema():
    for target in ("micrograd.engine:Value", "tests/buggy_engines/overwrite.py:Value", _target("kaitorch")):
        data = json.loads(card(target).dumps())
        jsonschema.validate(data, schema())
        assert data["format"] == "gradviz-exam" and data["version"] == 1
        assert sum(data["counts"].values()) == len(data["tests"])
    data = json.loads(card("tests/buggy_engines/overwrite.py:Value").dumps())
    assert data["ok"] is False and data["target"].endswith("tests/buggy_engines/overwrite.py:Value")
    [a_times_a] = [t for t in data["tests"] if t["id"] == "reuse/a*a"]
    [f] = a_times_a["findings"]
    assert (f["got"], f["expected"], f["blame"]) == (1.5, 3.0, "__mul__")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def test_html_card_is_one_page_without_scripts():
    page = card("tests/buggy_engines/overwrite.py:Value").html()
    parser = _Text()
    parser.feed(page)
    text = "".join(parser.text)
    assert "script" not in parser.tags and "What to fix" in text and "missing-accumulation" in text
    assert "default-src 'none'" in page


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gradviz", "exam", *args], capture_output=True, text=True, cwd=ROOT)


def test_cli_exit_status_and_outputs(tmp_path):
    ok = _cli("tests/exam_engines/tiny.py:Value", "--only", "+,*,reuse")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("gradviz exam: tests/exam_engines/tiny.py:Value")
    out = tmp_path / "card.json"
    failing = _cli("tests/buggy_engines/overwrite.py:Value", "--only", "reuse", "--json", "-o", str(out))
    assert failing.returncode == 1, failing.stderr
    jsonschema.validate(json.loads(failing.stdout), schema())
    assert json.loads(out.read_text()) == json.loads(failing.stdout) | {"seconds": json.loads(out.read_text())["seconds"]}
    page = tmp_path / "card.html"
    assert _cli("tests/buggy_engines/overwrite.py:Value", "--only", "reuse", "-o", str(page)).returncode == 1
    assert page.read_text().startswith("<!DOCTYPE html>")
    for args, message in [
        (("nowhere.py:Value",), "nowhere.py: no such file"),
        (("micrograd.engine",), "expected FILE.py:CLASS"),
        (("micrograd.engine:Nope",), "has no 'Nope'"),
        (("tests/exam_engines/tiny.py:Value", "-o", str(tmp_path / "card.svg")), "written as .html, .json or .txt"),
        (("tests/exam_engines/tiny.py:Value", "--timeout", "0"), "must be a number of seconds above 0"),
    ]:
        result = _cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert result.stdout == ""
    assert not (tmp_path / "card.svg").exists()


def test_readme_card_is_what_the_exam_prints():
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("## Is my engine right?\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```console\n", 1)[1].split("```", 1)[0]
    command, _, expected = block.partition("\n")
    assert command == "$ gradviz exam examples/my_engine.py:Value"
    done = _cli("examples/my_engine.py:Value")
    assert done.returncode == 1, done.stderr
    assert done.stdout == expected
    # what the section says of the card holds
    assert "`__mul__`'s `_backward` assigns (=) instead of adding (+=)" in expected
    assert "  crashed  a chain of 10,000 ops" in expected


@pytest.mark.renderer
def test_html_card_links_the_viewer_of_each_failing_graph(renderer, tmp_path):
    pytest.importorskip("gradviz.exporters.html")
    page = tmp_path / "card.html"
    done = _cli("tests/buggy_engines/overwrite.py:Value", "--only", "reuse", "-o", str(page))
    assert done.returncode == 1, done.stderr
    failing = [t for t in json.loads(_cli("tests/buggy_engines/overwrite.py:Value", "--only", "reuse", "--json").stdout)["tests"]
               if t["status"] == "fail"]
    viewers = sorted(p.name for p in tmp_path.iterdir() if p.name != "card.html")
    assert viewers == [f"card.{i}.html" for i in range(1, len(failing) + 1)]
    card_page = page.read_text("utf-8")
    for name in viewers:
        assert f'href="{name}"' in card_page
        assert (tmp_path / name).read_text("utf-8").startswith("<!DOCTYPE html>")


def test_after_three_timeouts_in_a_row_the_rest_is_not_run():
    report = card("tests/exam_engines/stuck.py:Value", only=("+",), timeout=1.0)
    errors = [r["error"] for r in report.results]
    assert [r["status"] for r in report.results] == ["crashed"] * 4
    assert all("did not finish in 1 s" in e for e in errors[:3])
    assert errors[3] == "not run: the 3 tests before it ran past the time limit"
    assert not report.ok
