"""Parquet export (gradviz.exporters.parquet): one row per node, steps of a run, read back by DuckDB and by gradviz."""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import shlex
import shutil
import subprocess
import sys

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gradviz
from gradviz import Value
from gradviz.errors import GradvizError, SnapshotError, UsageError
from gradviz.exporters.parquet import ParquetSeries, arrow_schema, read_parquet, to_arrow, write_parquet
from gradviz.graph.model import Graph, Node
from gradviz.nn import MLP

from helpers import EXAMPLES, REPO, run_gradviz, same_float, worked_example

# The lecture's worked example after L.backward(), in capture order (ids n0..n6): label, op, data, grad, operand positions.
WORKED_ROWS = [
    ("a", "", 2.0, 6.0, []),
    ("b", "", -3.0, -4.0, []),
    ("e", "*", -6.0, -2.0, [0, 1]),
    ("c", "", 10.0, -2.0, []),
    ("d", "+", 4.0, -2.0, [2, 3]),
    ("f", "", -2.0, 4.0, []),
    ("L", "*", -8.0, 1.0, [4, 5]),
]


def worked_graph() -> Graph:
    L, _ = worked_example()
    L.backward()
    return gradviz.snapshot(L, moment="after-backward")


def test_one_row_per_node_with_the_worked_examples_values(tmp_path):
    path = tmp_path / "L.parquet"
    write_parquet(worked_graph(), path, run="lecture", step=7)
    table = pq.read_table(path)  # read by pyarrow itself, not by gradviz
    assert table.schema.equals(arrow_schema(), check_metadata=False)
    rows = table.to_pylist()
    assert [(r["label"], r["op"], r["data"], r["grad"], r["operands"]) for r in rows] == WORKED_ROWS
    assert [r["id"] for r in rows] == [f"n{i}" for i in range(7)]
    assert [r["pos"] for r in rows] == list(range(7))
    assert {(r["run"], r["step"], r["moment"], r["engine"]) for r in rows} == {("lecture", 7, "after-backward", "gradviz")}
    assert [r["is_root"] for r in rows] == [False] * 6 + [True]
    assert all(r["params"] is None and r["operand_order"] is None and r["local_grads"] is None for r in rows)
    assert table.schema.metadata[b"gradviz"] == b'{"format": "gradviz-parquet", "version": 1}'


def test_duckdb_reads_the_values_and_the_operand_lists(tmp_path):
    path = tmp_path / "L.parquet"
    write_parquet(worked_graph(), path)
    con = duckdb.connect()
    assert con.sql(f"SELECT grad FROM '{path}' WHERE label = 'a'").fetchall() == [(6.0,)]
    # d's operands are e and c: join the list column back to the rows it points at
    got = con.sql(f"""
        SELECT o.label FROM '{path}' d, unnest(d.operands) AS u(p) JOIN '{path}' o ON o.pos = u.p
        WHERE d.label = 'd' ORDER BY o.pos
    """).fetchall()
    assert got == [("e",), ("c",)]
    assert con.sql(f"SELECT DISTINCT run FROM '{path}'").fetchall() == [("L",)]  # default run: the file's name


def test_an_operand_used_twice_is_two_list_entries_and_params_a_map(tmp_path):
    a = Value(3.0, label="a")
    y = (a + a) ** 2
    y.backward()  # y = (2a)^2, dy/da = 8a = 24
    path = tmp_path / "y.parquet"
    write_parquet(gradviz.capture(y), path)
    rows = pq.read_table(path).to_pylist()
    assert [(r["op"], r["operands"], r["params"]) for r in rows] == [
        ("", [], None),
        ("+", [0, 0], None),
        ("**", [1], [("exponent", 2.0)]),
    ]
    assert rows[0]["grad"] == 24.0
    assert duckdb.sql(f"SELECT params['exponent'] FROM '{path}' WHERE op = '**'").fetchall() == [(2.0,)]


def test_round_trip_is_exact_for_nan_infinity_and_negative_zero(tmp_path):
    data = [math.nan, math.inf, -0.0, 5e-324]
    graph = Graph.from_columns(
        data=data + [math.nan], grad=[-math.inf, -0.0, 1.5, math.nan, 1.0],
        op_names=("", "sum4"), op_codes=[0, 0, 0, 0, 1], offsets=[0, 0, 0, 0, 0, 4], operand_pos=[0, 1, 2, 3],
        labels=["x", "", "中文 | {<>}", "", "s"], moment="after-backward",
    )
    path = tmp_path / "odd.parquet"
    write_parquet(graph, path)
    back = read_parquet(path)
    assert back == graph
    assert all(map(same_float, back.data.tolist(), graph.data.tolist()))
    assert all(map(same_float, back.grad.tolist(), graph.grad.tolist()))
    assert duckdb.sql(f"SELECT count(*) FROM '{path}' WHERE isnan(data)").fetchall() == [(2,)]


def test_round_trip_of_ids_orders_local_grads_and_a_foreign_engine(tmp_path):
    nodes = {
        "x": Node("x", label="x", data=2.0, grad=3.0),
        "w": Node("w", label="w", data=-1.0, grad=6.0),
        "m": Node("m", op="*", data=-2.0, grad=3.0, operands=("x", "w"), order="inferred", local_grads=(-1.0, 2.0)),
        "out": Node("out", op="tanh", data=math.tanh(-2.0), grad=1.0, operands=("m",), local_grads=(1 - math.tanh(-2.0) ** 2,)),
    }
    graph = Graph(nodes, "out", moment="after-backward", engine="micrograd.engine.Value")
    path = tmp_path / "foreign.parquet"
    write_parquet(graph, path, run="mg", step=2)
    back = read_parquet(path)
    assert back == graph
    assert back.ids == ["x", "w", "m", "out"] and back.root == "out"
    assert back.node("m").order == "inferred" and back.node("m").local_grads == (-1.0, 2.0)
    row = duckdb.sql(f"SELECT operand_order, local_grads FROM '{path}' WHERE id = 'm'").fetchall()
    assert row == [("inferred", [-1.0, 2.0])]


def test_writing_and_reading_use_the_columns_and_make_no_nodes(tmp_path):
    L, _ = worked_example()
    L.backward()
    graph = gradviz.capture(L)
    write_parquet(graph, tmp_path / "L.parquet")
    ParquetSeries(tmp_path / "runs").append(graph)
    back = read_parquet(tmp_path / "L.parquet")
    assert graph._nodes is None and back._nodes is None  # no Node objects, on either side
    assert back.canonical_ids and back == graph


def test_a_label_that_is_not_utf8_is_written_as_its_escape(tmp_path):
    a = Value(1.0, label="caf\xe9 \udce9")  # a lone surrogate: bytes decoded with surrogateescape
    b = Value(2.0, label="b")
    write_parquet(gradviz.capture(a * b), tmp_path / "s.parquet")
    assert pq.read_table(tmp_path / "s.parquet")["label"].to_pylist() == ["caf\xe9 \\udce9", "b", ""]


def test_a_series_in_one_file_is_one_row_group_per_step(tmp_path):
    graphs = []
    for k in range(3):
        x = Value(float(k), label="x")
        y = x * x
        y.backward()  # dy/dx = 2x
        graphs.append(gradviz.capture(y))
    path = tmp_path / "run.parquet"
    write_parquet(iter(graphs), path, run="r", step=10)
    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    assert duckdb.sql(f"SELECT step, grad FROM '{path}' WHERE label = 'x' ORDER BY step").fetchall() == [
        (10, 0.0), (11, 2.0), (12, 4.0),
    ]
    assert read_parquet(path, step=11) == graphs[1]
    assert read_parquet(path, run="r", step=12) == graphs[2]
    with pytest.raises(SnapshotError, match=r"run\.parquet: holds 3 snapshots \(run 'r'; steps 10 to 12\); choose one with gradviz\.read_parquet\(path, run=\.\.\., step=\.\.\.\)"):
        read_parquet(path)
    with pytest.raises(SnapshotError, match=r"run\.parquet: no rows for run 'r' step 13$"):
        read_parquet(path, run="r", step=13)


def test_parquet_series_appends_one_file_per_step_and_resumes(tmp_path):
    folder = tmp_path / "runs" / "sgd"
    series = ParquetSeries(folder)
    assert series.run == "sgd" and series.steps == [] and folder.is_dir()
    graphs = []
    for k in range(3):
        L, _ = worked_example()
        L.backward()
        graphs.append(gradviz.capture(L))
    assert series.append(graphs[0]) == folder / "step-000000000.parquet"
    assert series.append(graphs[1]) == folder / "step-000000001.parquet"
    again = ParquetSeries(folder)  # a resumed run: a new process, the same folder
    assert again.append(graphs[2], step=40) == folder / "step-000000040.parquet"
    assert again.steps == [0, 1, 40] and len(again) == 3
    assert ParquetSeries(folder).append(graphs[2]).name == "step-000000041.parquet"
    assert again.read(1) == graphs[1]
    before = (folder / "step-000000001.parquet").read_bytes()
    with pytest.raises(UsageError, match=r"step-000000001\.parquet: step 1 of run 'sgd' is already written"):
        again.append(graphs[0], step=1)
    assert (folder / "step-000000001.parquet").read_bytes() == before
    assert sorted(os.listdir(folder)) == [f"step-0000000{s}.parquet" for s in ("00", "01", "40", "41")]  # no temporary left
    assert duckdb.sql(f"SELECT run, list(DISTINCT step ORDER BY step) FROM '{folder}/*.parquet' GROUP BY run").fetchall() == [
        ("sgd", [0, 1, 40, 41])
    ]
    with pytest.raises(SnapshotError, match="holds 4 snapshots"):
        read_parquet(folder)
    assert read_parquet(tmp_path / "runs", run="sgd", step=40) == graphs[2]
    (folder / "notes.txt").write_text("lr 0.1")  # other files in the folder are not read
    assert read_parquet(folder, step=0) == graphs[0]
    (tmp_path / "empty").mkdir()
    with pytest.raises(SnapshotError, match=r"empty: no \.parquet files in this folder"):
        read_parquet(tmp_path / "empty")


def test_bad_arguments_are_usage_errors(tmp_path):
    graph = worked_graph()
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a directory, and this is a file"):
        ParquetSeries(tmp_path / "file")
    with pytest.raises(UsageError, match=r"step must be a whole number >= 0, not -1"):
        write_parquet(graph, tmp_path / "x.parquet", step=-1)
    with pytest.raises(UsageError, match="run must be a str, not int"):
        to_arrow(graph, run=3, step=0)
    with pytest.raises(UsageError, match=r"is a folder; write_parquet writes one file \(ParquetSeries appends steps to a folder\)"):
        write_parquet(graph, tmp_path)
    with pytest.raises(UsageError, match="no graphs to write"):
        write_parquet([], tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()


def test_a_failure_half_way_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "run.parquet"
    write_parquet(worked_graph(), path)
    before = path.read_bytes()

    def graphs():
        yield worked_graph()
        raise RuntimeError("training crashed")

    with pytest.raises(RuntimeError, match="training crashed"):
        write_parquet(graphs(), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["run.parquet"]


def _refused(tmp_path, table, pattern):
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path)
    with pytest.raises(SnapshotError, match=pattern):
        read_parquet(path)


def _replace(table, name, values):
    i = table.schema.get_field_index(name)
    return table.set_column(i, table.schema.field(i), pa.array(values, table.schema.field(i).type))


def test_read_refuses_what_is_not_a_graph(tmp_path):
    good = to_arrow(worked_graph(), run="r", step=0)
    (tmp_path / "text.parquet").write_text("not parquet")
    with pytest.raises(SnapshotError, match=r"text\.parquet: cannot read as Parquet"):
        read_parquet(tmp_path / "text.parquet")
    _refused(tmp_path, good.drop_columns(["grad", "operands"]), r"bad\.parquet: not a gradviz Parquet file: no column grad, operands$")
    ops = [r for r in good["operands"].to_pylist()]
    ops[4] = [2, 5]  # d = e + f, where f comes later
    _refused(tmp_path, _replace(good, "operands", ops), r"node at pos 4 has operand 5, which is no earlier node")
    ops[4] = [2]  # '+' with one operand, on gradviz's own engine
    _refused(tmp_path, _replace(good, "operands", ops), r"node at pos 4: op '\+' takes 2 operand\(s\), got 1")
    ops[4] = [2, 2]  # c (pos 3) is now nobody's operand
    _refused(tmp_path, _replace(good, "operands", ops), r"node at pos 3 does not lead to the root \(pos 6\)")
    _refused(tmp_path, _replace(good, "is_root", [False] * 7), r"0 rows have is_root true")
    _refused(tmp_path, _replace(good, "pos", [0, 1, 2, 3, 4, 5, 5]), r"the positions \(column pos\) are not 0 to 6")
    _refused(tmp_path, _replace(good, "moment", ["later"] * 7), r"column moment is 'later'")
    bad_params = [None] * 6 + [[("exponent", 2.0)]]
    _refused(tmp_path, _replace(good, "params", bad_params), r"node at pos 6: op '\*' has parameters none, got exponent")
    with pytest.raises(SnapshotError, match="more than the limit of 6"):
        path = tmp_path / "ok.parquet"
        pq.write_table(good, path)
        read_parquet(path, max_nodes=6)


def test_a_null_inside_operands_params_or_local_grads_is_refused_in_one_line(tmp_path):
    # another writer's file: the list and map columns may hold null entries, which no graph has
    good = to_arrow(worked_graph(), run="r", step=0)
    a = Value(3.0, label="a")
    squared = to_arrow(gradviz.snapshot(a**2), run="r", step=0)
    assert squared["params"].to_pylist() == [None, [("exponent", 2.0)]]
    cases = [
        (_replace(good, "operands", [[], [], [None, 1], [], [2, 3], [], [4, 5]]), "column operands has a null operand position"),
        (_replace(good, "local_grads", [None, None, [None, 2.0], None, None, None, None]), "node at pos 2 has a null in column local_grads"),
        (_replace(squared, "params", [None, [("exponent", None)]]), "node at pos 1 has a null parameter value in column params"),
    ]
    for table, message in cases:
        folder = tmp_path / str(len(os.listdir(tmp_path)))
        folder.mkdir()
        pq.write_table(table, folder / "bad.parquet")
        with pytest.raises(SnapshotError) as caught:
            read_parquet(folder / "bad.parquet")
        assert str(caught.value) == f"{folder / 'bad.parquet'}: {message}"
        for command in (["check", "bad.parquet"], ["render", "bad.parquet", "-o", "out.json"], ["trace", "bad.parquet"]):
            done = run_gradviz(*command, cwd=folder)
            assert (done.returncode, done.stderr.splitlines()) == (2, [f"gradviz: error: bad.parquet: {message}"])
        assert os.listdir(folder) == ["bad.parquet"]


def test_a_newer_format_version_is_refused_and_a_file_without_metadata_read(tmp_path):
    graph = worked_graph()
    table = to_arrow(graph, run="r", step=0)
    _refused(
        tmp_path,
        table.replace_schema_metadata({"gradviz": '{"format": "gradviz-parquet", "version": 2}'}),
        r"bad\.parquet: gradviz-parquet version 2 is newer than this gradviz reads \(1\); upgrade gradviz$",
    )
    path = tmp_path / "plain.parquet"
    pq.write_table(table.replace_schema_metadata(None), path)  # the same columns from another writer
    assert read_parquet(path) == graph


def test_rows_in_another_order_are_put_back_in_position_order(tmp_path):
    graph = worked_graph()
    table = to_arrow(graph, run="r", step=0)
    path = tmp_path / "shuffled.parquet"
    pq.write_table(table.take(pa.array([6, 2, 0, 5, 1, 4, 3])), path)
    assert read_parquet(path) == graph


def test_without_pyarrow_the_error_says_what_to_install(tmp_path, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: `import pyarrow` raises ImportError
    with pytest.raises(GradvizError, match=r"^Parquet needs pyarrow: pip install 'gradviz\[arrow\]'$"):
        write_parquet(worked_graph(), tmp_path / "x.parquet")
    with pytest.raises(GradvizError, match=r"pip install 'gradviz\[arrow\]'"):
        ParquetSeries(tmp_path / "runs")
    from gradviz.cli import main

    status = main(["snapshot", str(EXAMPLES / "worked_example.py"), "--backward", "-o", str(tmp_path / "L.parquet")])
    err = capsys.readouterr().err
    assert status == 2
    assert err == "gradviz: error: Parquet needs pyarrow: pip install 'gradviz[arrow]'\n"
    assert os.listdir(tmp_path) == []


def test_gradviz_imports_and_runs_without_pyarrow(tmp_path):
    code = (
        "import sys; sys.modules['pyarrow'] = None\n"  # as if it were not installed
        "import gradviz\n"
        "from gradviz.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    script = EXAMPLES / "worked_example.py"
    run = lambda *args: subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=tmp_path, capture_output=True, text=True)  # noqa: E731
    done = run("snapshot", script, "--backward", "-o", "L.json")
    assert (done.returncode, done.stderr) == (0, "gradviz: wrote L.json (7 nodes)\n")
    done = run("snapshot", script, "--backward", "-o", "runs/L/")
    assert (done.returncode, done.stderr) == (2, "gradviz: error: Parquet needs pyarrow: pip install 'gradviz[arrow]'\n")
    done = run("render", "L.json", "-o", "L.parquet")
    assert (done.returncode, done.stderr) == (2, "gradviz: error: Parquet needs pyarrow: pip install 'gradviz[arrow]'\n")
    assert os.listdir(tmp_path) == ["L.json"]


def test_cli_writes_a_file_a_pair_and_appends_steps(tmp_path):
    script = EXAMPLES / "worked_example.py"
    done = run_gradviz("snapshot", script, "--backward", "-o", "L.parquet", "--run", "lecture", "--step", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "gradviz: wrote L.parquet (7 nodes)\n"
    rows = pq.read_table(tmp_path / "L.parquet").to_pylist()
    assert [(r["label"], r["grad"]) for r in rows] == [(label, grad) for label, _, _, grad, _ in WORKED_ROWS]
    assert {(r["run"], r["step"]) for r in rows} == {("lecture", 3)}
    for step in ("", "5", ""):
        done = run_gradviz("snapshot", script, "--backward", "-o", "runs/L/", *(["--step", step] if step else []), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    assert ParquetSeries(tmp_path / "runs" / "L").steps == [0, 5, 6]
    done = run_gradviz("snapshot", script, "--pair", "-o", "P.parquet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    before, after = read_parquet(tmp_path / "P.before.parquet"), read_parquet(tmp_path / "P.after.parquet")
    assert (before.moment, after.moment) == ("before-backward", "after-backward")
    assert before.grad.tolist() == [0.0] * 7 and after.grad.tolist() == [6.0, -4.0, -2.0, -2.0, -2.0, 4.0, 1.0]
    assert duckdb.sql(f"SELECT DISTINCT run FROM '{tmp_path}/P.*.parquet'").fetchall() == [("P",)]


def test_a_parquet_snapshot_is_an_input_like_a_json_one(tmp_path):
    # `gradviz snapshot -o L.parquet` writes what render, check, diff and gradviz.load then read
    script = EXAMPLES / "worked_example.py"
    for out in ("L.parquet", "L.json"):
        done = run_gradviz("snapshot", script, "--backward", "-o", out, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    from_parquet, from_json = gradviz.load(tmp_path / "L.parquet"), gradviz.load(tmp_path / "L.json")
    assert from_parquet == from_json
    assert from_parquet.grad.tolist() == [6.0, -4.0, -2.0, -2.0, -2.0, 4.0, 1.0]  # a b e c d f L, worked by hand
    for out in ("from_parquet.dot", "from_json.dot"):
        done = run_gradviz("render", "L.parquet" if out == "from_parquet.dot" else "L.json", "-o", out, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    import pydot

    (a,), (b,) = (pydot.graph_from_dot_file(str(tmp_path / f)) for f in ("from_parquet.dot", "from_json.dot"))
    assert a.to_string() == b.to_string()
    assert len(a.get_nodes()) > 7  # the seven values (and their op boxes), not an empty picture
    done = run_gradviz("check", "L.parquet", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    done = run_gradviz("diff", "L.parquet", "L.json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    done = run_gradviz("render", "L.parquet", "--backward", "-o", "x.svg", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (2, "gradviz: error: L.parquet: --root and --backward apply to scripts, not to snapshots\n")
    assert not (tmp_path / "x.svg").exists()


def test_gradviz_load_reads_an_open_parquet_file_as_it_reads_the_path(tmp_path):
    path = tmp_path / "L.parquet"
    write_parquet(worked_graph(), path)
    with open(path, "rb") as f:
        graph = gradviz.load(f)
    assert graph == gradviz.load(path)
    assert graph.grad.tolist() == [6.0, -4.0, -2.0, -2.0, -2.0, 4.0, 1.0]  # a b e c d f L
    assert gradviz.load(io.BytesIO(path.read_bytes())) == graph  # no name: known by its magic bytes
    write_parquet([worked_graph()] * 2, tmp_path / "two.parquet", run="r")
    with open(tmp_path / "two.parquet", "rb") as f, pytest.raises(SnapshotError) as caught:
        gradviz.load(f)
    assert str(caught.value).startswith(f"{tmp_path / 'two.parquet'}: holds 2 snapshots")


def test_a_missing_parquet_file_and_a_parquet_input_to_snapshot_are_named_plainly(tmp_path):
    for missing in (tmp_path / "gone.parquet", tmp_path / "gone.json"):  # the same words for both
        with pytest.raises(SnapshotError) as caught:
            gradviz.load(missing)
        assert str(caught.value) == f"{missing}: cannot read: No such file or directory"
    write_parquet(worked_graph(), tmp_path / "L.parquet")
    done = run_gradviz("snapshot", "L.parquet", "-o", "Y.json", cwd=tmp_path)
    assert (done.returncode, done.stderr.splitlines()) == (
        2, ["gradviz: error: L.parquet: gradviz snapshot runs a Python script (.py); a .json or .parquet file is already a snapshot"])
    assert sorted(os.listdir(tmp_path)) == ["L.parquet"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "L.txt"], "L.txt: a snapshot is JSON or Parquet; name the output *.json or *.parquet (or DIR/ for a Parquet series)"),
        (["-o", "L.json", "--step", "2"], "--run and --step are columns of Parquet output; name the output *.parquet or DIR/"),
        (["-o", "runs/", "--pair"], "runs/: --pair writes two files; name the output *.parquet"),
        (["-o", "L.parquet", "--step", "-1"], None),
    ],
)
def test_cli_refusals_are_one_line_and_status_2(tmp_path, args, message):
    done = run_gradviz("snapshot", EXAMPLES / "worked_example.py", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    if message:
        assert done.stderr == f"gradviz: error: {message}\n"
    assert os.listdir(tmp_path) == []


# -- the README's example ------------------------------------------------------------------------

README = (REPO / "README.md").read_text("utf-8")
SECTION = re.search(r"^## Many snapshots: Parquet.*?\n(.*?)(?=^## )", README, flags=re.S | re.M).group(1)


def test_readme_answer_is_the_parameter_whose_grad_changed_most(tmp_path, monkeypatch):
    (code,) = re.findall(r"^```python\n(.*?)^```", SECTION, flags=re.S | re.M)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
    printed = out.getvalue().splitlines()

    # The same training, with each parameter's grad kept in Python at every step: no Parquet, no SQL.
    model = MLP(2, [4, 1], seed=0)
    points = [(2.0, 1.0), (-1.5, 2.0), (-2.0, -1.0), (1.0, -2.5)]
    targets = [1.0, -1.0, 1.0, -1.0]
    grads: dict[str, list[float]] = {p.label: [] for p in model.parameters()}
    losses = []
    for _ in range(5):
        loss = sum((model([Value(x0), Value(x1)]) - y) ** 2 for (x0, x1), y in zip(points, targets))
        model.zero_grad()
        loss.backward()
        losses.append(loss.data)
        for p in model.parameters():
            grads[p.label].append(p.grad)
        for p in model.parameters():
            p.data -= 0.05 * p.grad
    change = {label: max(g) - min(g) for label, g in grads.items()}
    best = max(change, key=change.get)
    assert sorted(change.values())[-2] < change[best]  # one clear answer
    assert printed == [f"{best} {round(change[best], 4)}", str([round(x, 3) for x in losses])]
    assert sorted(os.listdir(tmp_path / "runs" / "sgd")) == [f"step-00000000{k}.parquet" for k in range(5)]


def test_readme_commands_run(tmp_path):
    (console,) = re.findall(r"^```console\n(.*?)^```", SECTION, flags=re.S | re.M)
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    commands = [line[2:] for line in console.splitlines() if line.startswith("$ ")]
    assert len(commands) == 2
    for command in commands:
        done = run_gradviz(*shlex.split(command)[1:], cwd=tmp_path)
        assert done.returncode == 0, f"{command}: {done.stderr}"
    assert read_parquet(tmp_path / "mlp.parquet") == read_parquet(tmp_path / "runs" / "mlp", step=0)
    assert read_parquet(tmp_path / "mlp.parquet").n == 2448


def test_bench_prints_every_row():
    done = subprocess.run(
        [sys.executable, "bench/parquet.py", "--sizes", "2e3", "--runs", "1", "--steps", "3", "--step-nodes", "1e3"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"mlp [\d,]+ nodes", lines[0])
    names = ["backward", "capture", "to_arrow", "write step", "read step", "DuckDB scan"]
    assert [line.split("  ")[1].strip() for line in lines[1:7]] == names
    assert re.fullmatch(r"  file +\d+\.\d B/node  \([\d,]+ bytes\)", lines[7])
    assert sorted(part.split()[0] for part in lines[8].strip().split(", ")) == sorted(f.name for f in arrow_schema())
    assert re.fullmatch(r"series of 3 steps of ([\d,]+) nodes \([\d,]+ rows\)", lines[9])
    assert re.fullmatch(r"  append +\d+(\.\d)? (us|ms|s)  per step \(median\)", lines[10])
    assert re.fullmatch(r"  DuckDB query +\d+(\.\d+)? (us|ms|s)  which parameter's grad changed most, over every step", lines[11])
    assert len(lines) == 12


def test_load_of_a_parquet_file_opened_as_text_says_to_open_it_binary(tmp_path):
    path = tmp_path / "L.parquet"
    write_parquet(worked_graph(), path)
    with open(path, encoding="utf-8") as f, pytest.raises(SnapshotError) as raised:
        gradviz.load(f)
    message = str(raised.value)
    assert message.startswith(f"{path}: not UTF-8 text (") and message.endswith("open a Parquet file in binary mode ('rb')")
    assert "\n" not in message
    with open(path, "rb") as f:  # the same file, opened as bytes, is read
        assert gradviz.load(f).grad.tolist() == [6.0, -4.0, -2.0, -2.0, -2.0, 4.0, 1.0]


def test_render_writes_a_json_snapshot_as_parquet_and_back(tmp_path):
    script = EXAMPLES / "worked_example.py"
    done = run_gradviz("snapshot", script, "--backward", "-o", "L.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = run_gradviz("render", "L.json", "-o", "lecture.parquet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1] == "gradviz: wrote lecture.parquet (7 nodes)"
    rows = pq.read_table(tmp_path / "lecture.parquet").to_pylist()
    assert {(r["run"], r["step"]) for r in rows} == {("lecture", 0)}  # run: the output file's name
    assert [(r["label"], r["grad"]) for r in rows] == [(label, grad) for label, _, _, grad, _ in WORKED_ROWS]
    assert gradviz.load(tmp_path / "lecture.parquet") == gradviz.load(tmp_path / "L.json")
    done = run_gradviz("render", "lecture.parquet", "-o", "again.json", cwd=tmp_path)  # and back, unchanged
    assert done.returncode == 0, done.stderr
    assert gradviz.load(tmp_path / "again.json") == gradviz.load(tmp_path / "L.json")
    out = gradviz.render(worked_graph(), tmp_path / "api.parquet")  # the Python API, the same file
    assert out == tmp_path / "api.parquet"
    assert read_parquet(out) == worked_graph()
    assert set(pq.read_table(out).column("run").to_pylist()) == {"api"}
    done = run_gradviz("check", "L.json", "-o", "checked.parquet", cwd=tmp_path)  # an analysis's -o: the graph
    assert done.returncode == 0, done.stdout + done.stderr
    assert gradviz.load(tmp_path / "checked.parquet") == gradviz.load(tmp_path / "L.json")


def test_load_of_a_parquet_path_keeps_the_byte_cap(tmp_path):
    path = tmp_path / "L.parquet"
    write_parquet(worked_graph(), path)
    size = path.stat().st_size
    with pytest.raises(SnapshotError, match=rf"^{re.escape(str(path))}: {size:,} bytes is more than the limit of 100 \(see max_bytes\)$"):
        gradviz.load(path, max_bytes=100)
    assert gradviz.load(path, max_bytes=size) == worked_graph()


def test_a_series_folder_named_like_a_json_file_is_still_a_series(tmp_path):
    # -o DIR/ appends a step to a Parquet series whatever the folder's name ends in
    done = run_gradviz("snapshot", EXAMPLES / "worked_example.py", "--backward", "-o", "runs.json/", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "runs.json").is_dir()
    assert ParquetSeries(tmp_path / "runs.json").steps == [0]
    assert read_parquet(tmp_path / "runs.json").grad.tolist() == [6.0, -4.0, -2.0, -2.0, -2.0, 4.0, 1.0]
