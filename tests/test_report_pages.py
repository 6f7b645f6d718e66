"""The HTML report (torch_ref.pages): what its pages say is the record's, every figure has its text,
the scale separates within from beyond, and the pages render in a real headless Chromium at a desktop's
and a phone's width without a console error.

The browser tests need Chromium (Debian's ``chromium``, which ``.ci/run`` installs where missing). Without
it they skip here, and fail under CI: a CI run that opened no page has checked nothing.
``REPORT_SCREENSHOTS=docs/img python -m pytest tests/test_report_pages.py`` also writes the screenshots
that docs/reports.md shows.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import report_cases
from browser import Browser, chromium

from torch_ref.pages import to_html, write_html
from torch_ref.pages.formulas import formula_for
from torch_ref.pages.svg import colour

SHOTS = {  # the cases whose screenshots the docs show, and the file names
    "transposed_weight": "report_transposed_weight.png",
    "batch_norm_constants": "report_batch_norm_constants.png",
    "adam_without_bias_correction": "report_adam_without_bias_correction.png",
    "passing_run": "report_passing_run.png",
}


@pytest.fixture(scope="module")
def records() -> dict[str, dict[str, Any]]:
    return {name: make() for name, make in report_cases.CASES.items()}


# ------------------------------------------------------------------------------- what the pages hold


def test_every_failure_record_carries_its_page_fields_as_strict_json(records):
    for name, r in records.items():
        json.dumps(r, allow_nan=False)  # JSON without NaN or inf: any tool reads it
        if not r["passed"]:
            assert "error" not in r["page"], (name, r["page"])
            assert r["page"]["arrays"], name


def test_the_heat_map_is_the_comparison_entry_by_entry(records):
    """The transposed weight: its cells are |g - gᵀ| / tol, the diagonal within, the rest beyond as the
    record's rows say; recomputed here from the case, not read back from the page."""
    import manual

    r = records["transposed_weight"]
    spec = manual.Spec(
        tuple(r["case"]["sizes"]),
        tuple(r["case"]["activations"]),
        r["case"]["loss"],
        bias=r["case"]["bias"],
        reduction=r["case"]["reduction"],
    )
    from torch_ref.strategies import case_from

    case = case_from(
        spec,
        N=r["case"]["N"],
        seed=r["case"]["seed"],
        grid=r["case"]["grid"],
        gain=r["case"]["gain"],
        lr=r["case"]["lr"],
    )
    right = manual.gradients(spec, case.params, case.X, case.Y)
    for a, W in zip(r["page"]["arrays"], right.weights, strict=True):
        g = a["grid"]
        cells = np.array([float(c) for c in g["cells"]]).reshape(g["rows"], g["cols"])
        wrong = np.abs(W.T - W)
        assert np.all((cells > 1) == (wrong > 1e-12)), (cells, wrong)
        assert np.all(np.diag(cells) <= 1.0)  # a transpose leaves the diagonal right
        assert g["beyond"] == int(np.count_nonzero(cells > 1))


def test_the_marked_node_is_where_the_report_says_the_two_part(records):
    fc = records["transposed_weight"]
    marked = [n for n in fc["page"]["diagram"]["nodes"] if n["marked"]]
    assert len(marked) == 1 and marked[0]["label"].startswith(f"layer {fc['layer']}:")
    net = records["residual_network"]
    place = re.search(r"They part at (layers\[[^\]]+\](?:\[[^\]]+\])*)", net["report"]).group(1)
    marked = [n for n in net["page"]["diagram"]["nodes"] if n["marked"]]
    assert len(marked) == 1 and marked[0]["label"].startswith(place + " "), (place, marked)


def test_the_diagnosed_places_are_the_ones_the_diagnosis_names(records):
    """C: both transposed layers; A: the residual block whose skip is dropped (not a node of it); F: the
    attention node whose mask is left out. And a page whose report names no layer marks none, and says so."""
    fc = records["transposed_weight"]["page"]["diagram"]
    assert [n["diagnosed"] for n in fc["nodes"]] == [True, True]
    net = records["residual_network"]["page"]["diagram"]
    assert [g["diagnosed"] for g in net["groups"]] == [True] and not any(n["diagnosed"] for n in net["nodes"])
    attention = records["causal_attention"]["page"]["diagram"]
    assert [n["label"] for n in attention["nodes"] if n["diagnosed"]] == ["layers[1][1] self_attention 4/1h causal"]
    dp = records["data_parallel"]
    assert not any(n["marked"] for n in dp["page"]["diagram"]["nodes"])
    assert "names no single layer" in to_html(dp) and "hatched strip" not in to_html(dp)
    assert dp["case"]["shard_sizes"] and dp["case"]["world_size"] == 2


def test_the_worst_entry_values_and_finite_differences_side_with_the_reference(records):
    for name in ("transposed_weight", "batch_norm_constants", "residual_network"):
        page = records[name]["page"]
        w = page["worst"]
        a = next(x for x in page["arrays"] if x["name"] == w["array"])
        fd = w["finite_difference"]
        assert abs(fd["value"] - a["at_worst"]["reference"]) <= fd["error"], (name, fd, a)
        assert abs(fd["value"] - a["at_worst"]["derivation"]) > fd["error"], (name, fd, a)
        assert fd["sides"] == "they side with the reference", (name, fd)  # and the page says so
    fd = records["adam_without_bias_correction"]["page"]["worst"]["finite_difference"]
    assert fd["absent"].startswith("not taken for a training check")


def test_the_trajectory_parts_at_the_reported_step(records):
    r = records["adam_without_bias_correction"]
    path = r["page"]["trajectory"]
    assert [p["step"] for p in path] == list(range(1, len(path) + 1))
    first_beyond = next(p["step"] for p in path if p["share_of_bound"] > 1)
    assert first_beyond == r["step"] == r["page"]["parted_step"]


def test_data_parallel_pages_list_the_ranks(records):
    ranks = records["data_parallel"]["page"]["ranks"]
    assert [x["rank"] for x in ranks] == list(range(len(ranks))) and len(ranks) == 2
    assert any(x["status"] == "MISMATCH" for x in ranks)


def test_the_diagnoses_come_with_their_formula(records):
    for name in ("transposed_weight", "batch_norm_constants", "adam_without_bias_correction", "residual_network"):
        assert any(n["marked"] for n in records[name]["page"]["diagram"]["nodes"]), name
        html = to_html(records[name])
        assert records[name]["diagnosis"], name
        assert "<math" in html, name
    assert formula_for("no known pattern fits") is None  # no formula the sentence does not name
    # the formula follows the mistake's words, not the place's: a causal mask in a residual block
    assert formula_for(records["causal_attention"]["diagnosis"][0])[0].startswith("causal attention")


@pytest.mark.parametrize("name", list(report_cases.CASES))
def test_pages_are_standalone(records, name):
    html = to_html(records[name])
    assert html.startswith("<!doctype html>")
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import|url\((?!#)", html), "a page fetches nothing"
    for svg in re.findall(r"<svg\b[^>]*>", html):
        assert 'role="img"' in svg and "aria-labelledby" in svg, svg  # every figure has its text


def test_the_scale_reads_in_grey_and_separates_the_bound():
    """Lightness falls all the way from 1e-4 to 1e4 (a grey print keeps the order), and the two sides of
    the bound differ: share 1 is the last within, anything above it beyond."""

    def lightness(hex_: str) -> float:
        r, g, b = (int(hex_[i : i + 2], 16) / 255 for i in (1, 3, 5))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    shares = np.logspace(-4, 4, 81)
    light = [lightness(colour(float(s))) for s in shares]
    wide = [lightness(colour(float(s), high=13.0)) for s in np.logspace(-4, 13, 120)]
    assert all(a >= b for a, b in itertools.pairwise(wide)), wide
    assert lightness(colour(1e6, high=13.0)) > lightness(colour(1e12, high=13.0)) + 0.05  # beyond, still apart
    assert all(a >= b for a, b in itertools.pairwise(light)), light
    assert lightness(colour(1.0)) - lightness(colour(1.0 + 1e-9)) > 0.1
    record = {
        "name": "W",
        "share": 1.0,
        "worst": [0, 1],
        "grid": {
            "shape": [1, 2],
            "layout": "as is",
            "rows": 1,
            "cols": 2,
            "block": [1, 1],
            "cells": [1.0, 1.0000001],
            "entries": 2,
            "beyond": 1,
            "no_bound": 0,
        },
    }
    from torch_ref.pages.heatmap import heatmap

    svg = heatmap(record, "t")
    assert svg.count('class="cell within"') == 1 and svg.count('class="cell beyond"') == 1


def test_a_failure_and_a_pass_on_one_page_put_the_failure_first(records, tmp_path):
    path = write_html([records["passing_run"], records["transposed_weight"]], tmp_path / "run.html", "two checks")
    html = path.read_text()
    assert html.index('<section class="run" id="r1">') < html.index('<section class="run" id="r0">')
    assert "1 failed, 0 not judged, 1 passed" in html


# ------------------------------------------------------------------------------- in a real browser


def _browser_or_skip() -> str:
    path = chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI has no Chromium: .ci/run installs it (apt-get install chromium); no page was opened")
        pytest.skip("no Chromium here (apt-get install chromium); CI installs it")
    return path


@pytest.fixture(scope="module")
def browser():
    path = _browser_or_skip()
    with Browser(path) as b:
        yield b


_COUNTS = """(() => ({
  cells: document.querySelectorAll('svg.heatmap rect.cell').length,
  beyond: document.querySelectorAll('svg.heatmap rect.cell.beyond').length,
  marked: document.querySelectorAll('svg.diagram g[data-marked="true"]').length,
  diagnosed: document.querySelectorAll('svg.diagram [data-diagnosed="true"]').length,
  maths: Array.from(document.querySelectorAll('math')).map(m => m.getBoundingClientRect().width),
  figures: Array.from(document.querySelectorAll('svg')).filter(s => s.getBoundingClientRect().width > 0).length,
  untitled: Array.from(document.querySelectorAll('svg')).filter(s => !s.querySelector('title')).length,
  smallest_cell: Math.min(...Array.from(document.querySelectorAll('svg.heatmap rect.cell')).map(r => r.getBoundingClientRect().width), 1e9),
}))()"""


@pytest.mark.parametrize("width", [1280, 390], ids=["desktop", "phone"])
@pytest.mark.parametrize("name", list(report_cases.CASES))
def test_the_page_renders_in_chromium(records, browser, tmp_path, name, width):
    r = records[name]
    path = write_html(r, tmp_path / f"{name}.html")
    page = browser.open(path, width=width, mobile=width < 600)
    counts = page.evaluate(_COUNTS)
    assert page.errors == [], page.errors
    assert page.scroll_width() <= width, "the page itself never scrolls sideways"
    assert counts["untitled"] == 0
    if r["passed"]:
        assert counts["cells"] == 0 and counts["marked"] == 0
    else:
        grids = [a["grid"] for a in r["page"]["arrays"] if a["grid"]]
        assert counts["cells"] == sum(g["rows"] * g["cols"] for g in grids)
        assert counts["beyond"] == sum(
            sum(1 for c in g["cells"] if c not in ("nan", "nonfinite") and float(c) > 1) for g in grids
        )
        d = r["page"]["diagram"]
        assert counts["marked"] == sum(n["marked"] for n in d["nodes"])
        assert counts["diagnosed"] == sum(n["diagnosed"] for n in d["nodes"]) + sum(g["diagnosed"] for g in d["groups"])
        assert counts["smallest_cell"] >= 6
        if any(formula_for(d) for d in r["diagnosis"]):
            assert counts["maths"] and min(counts["maths"]) > 20, "MathML laid out"
    shot = tmp_path / f"{name}-{width}.png"
    page.screenshot(shot)
    assert shot.read_bytes().startswith(b"\x89PNG")
    target = os.environ.get("REPORT_SCREENSHOTS")
    if target and width == 1280 and name in SHOTS:
        Path(target, SHOTS[name]).write_bytes(shot.read_bytes())


def test_the_copy_button_copies_or_selects_the_reproduce_lines(records, browser, tmp_path):
    path = write_html(records["transposed_weight"], tmp_path / "copy.html")
    page = browser.open(path, width=1280)
    page.evaluate("document.querySelector('button.copy').click()")
    text = page.evaluate(
        "new Promise(r => setTimeout(() => r(document.querySelector('button.copy').textContent), 300))"
    )
    assert text in ("Copied", "Selected: press Ctrl+C"), text
    if text.startswith("Selected"):
        assert "check_case" in page.evaluate("window.getSelection().toString()")
    assert page.errors == []


# ------------------------------------------------------------------------------- adversarial cases


def test_cells_tell_a_bound_of_zero_from_no_bound_and_a_nonfinite_value():
    """An equal entry under a bound of 0 is within (share 0); a difference under a bound of 0 is beyond
    (inf, drawn the darkest beyond, hatched); a NaN or infinite value is its own kind of cell (black);
    only an infinite bound is "no finite bound"."""
    from torch_ref.figures.grid import array_fields
    from torch_ref.numerics.compare import compare
    from torch_ref.pages.heatmap import heatmap

    got = np.array([1.0, np.inf, 0.001, 2.0])
    want = np.array([1.0, 1.0, 0.0, 3.0])
    bound = np.array([0.0, 1e-3, 0.0, np.inf])
    a = array_fields(compare(["a"], [got], [want], [bound]).rows[0])
    assert a["grid"]["cells"] == [0.0, "nonfinite", "inf", "nan"]
    assert (a["grid"]["beyond"], a["grid"]["no_bound"], a["grid"]["nonfinite"]) == (2, 1, 1)
    svg = heatmap(a, "z")
    assert [m for m in re.findall(r'class="cell (\w+)"', svg)] == ["within", "nonfinite", "beyond", "nobound"]


def test_a_training_pages_worst_entry_is_its_heat_maps_largest_cell(records):
    """The step comparison's own diff/tol is the share of what the step adds; the page shows |W - V| / B
    everywhere, the worst-entry table, the array table and the heat map alike."""
    page = records["adam_without_bias_correction"]["page"]
    w = page["worst"]
    a = next(x for x in page["arrays"] if x["name"] == w["array"])
    at = a["at_worst"]
    assert abs(abs(at["derivation"] - at["reference"]) / at["bound"] / a["share"] - 1) < 1e-3
    largest = max(float(c) for x in page["arrays"] for c in x["grid"]["cells"] if c not in ("nan", "nonfinite"))
    assert abs(largest / a["share"] - 1) < 1e-3


def test_a_diagnosis_that_names_no_mistake_gets_no_formula_and_no_mark():
    import derivations

    import torch_ref

    r = report_cases.failure(
        lambda: torch_ref.check_derivation(
            derivations.weight_gradient_from_layer_output, max_examples=15, seed=3, depths=(2, 3), widths=(2, 4)
        )
    )
    assert r["diagnosis"] and all("no known pattern fits" in d for d in r["diagnosis"]), r["diagnosis"]
    assert not any(n["diagnosed"] for n in r["page"]["diagram"]["nodes"])
    assert "<math" not in to_html(r)


def test_a_network_training_page_marks_the_step_parting_place_and_says_it():
    import network_mistakes

    import torch_ref
    from manual.network import Network, dropout, linear

    net = Network([linear(3, 5), "relu", dropout(0.5), linear(5, 2)], "cross_entropy")
    r = report_cases.failure(
        lambda: torch_ref.check_training(
            network_mistakes.DropoutMaskReused, networks=(net, (4, 3)), steps=3, lr=0.1, max_examples=10, seed=0
        )
    )
    line = next(line for line in r["report"].splitlines() if " parts first " in line)
    marked = [n["label"] for n in r["page"]["diagram"]["nodes"] if n["marked"]]
    assert len(marked) == 1 and marked[0].split(" ")[0] in line, (marked, line)
    html = to_html(r)
    assert "Where they part" in html and "The trajectory" in html
    assert r["page"]["worst"]["finite_difference"]["absent"].startswith("not taken for a network-training check")


def test_update_and_function_pages_name_what_their_columns_hold():
    import layer_styles

    import torch_ref

    update = report_cases.failure(
        lambda: torch_ref.check_update(
            lambda spec, p, X, Y, lr: manual_step(spec, p, X, Y, 2 * lr), max_examples=10, seed=0
        )
    )
    assert update["page"]["reference"] == "torch.optim.SGD"
    assert "updated weights" in update["page"]["worst"]["finite_difference"]["absent"]
    function = report_cases.failure(
        lambda: torch_ref.check_function(
            layer_styles.SiLUWrong, shapes={"x": "N D"}, dims={"N": (1, 3), "D": (1, 3)}, max_examples=10, seed=0
        )
    )
    assert function["page"]["reference"] == "finite differences of your forward"
    assert "itself central finite differences" in function["page"]["worst"]["finite_difference"]["absent"]


def manual_step(spec: Any, p: Any, X: Any, Y: Any, lr: float) -> Any:
    import manual

    return manual.sgd_step(spec, p, X, Y, lr)


def test_many_training_checks_on_one_page_keep_their_ids_unique(records):
    html = to_html(
        [records["adam_without_bias_correction"], records["adam_without_bias_correction"], records["transposed_weight"]]
    )
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert ids and len(ids) == len(set(ids))
    for ref in re.findall(r'aria-labelledby="([^"]+)"', html):
        assert all(x in ids for x in ref.split()), ref


def test_passing_pages_claim_only_what_their_kind_tracks(records):
    import torch_ref
    from manual.network import Network, linear

    summary = torch_ref.check_derivation(
        lambda net, params, X, Y: net.gradients(params, X, Y),
        networks=(Network([linear(4, 4), "relu", linear(4, 2)], "cross_entropy"), (3, 4)),
        max_examples=3,
        seed=0,
    )
    html = summary.to_html()
    assert "architectures" in html and "a square layer" not in html and "targets" not in html
    fc = to_html(records["passing_run"])
    assert "a square layer" in fc and "an input exactly at an activation" in fc
