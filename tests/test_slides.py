"""The slides' formulas, transcribed as written: checked against autograd, against the general
manual implementation, and symbolically; the report flags exactly the formulas that do not hold."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from torch_ref.slides import FORMULAS, draw_point, points
from torch_ref.slides.check import holds, symbolic_identity
from torch_ref.slides.quantities import autograd_quantities, manual_quantities

WRONG = [f for f in FORMULAS if f.why is not None]
RIGHT = [f for f in FORMULAS if f.why is None]


def _id(f) -> str:
    return f"{f.slide}|{f.name}"


NETS = sorted({f.net for f in FORMULAS})


# Every formula of a network is checked at each drawn point, from one evaluation of autograd's and
# manual's quantities there (the quantities cost about 5 ms a point, a formula 0.03 ms): each formula
# meets the profile's full max_examples of points (150 in "ci"), where one test per formula with a
# sixth of them (25) cost twice the time.
@pytest.mark.parametrize("net", NETS)
@given(data=st.data())
def test_every_formula_of_a_network_matches_autograd_and_manual(net, data):
    p = data.draw(points(net))
    by_autograd = autograd_quantities(p)
    by_manual = manual_quantities(p)
    failed = []
    for formula in (f for f in FORMULAS if f.net == net):
        if formula.why is not None:  # known wrong as written: its correction must hold
            if not holds(formula.evaluate_corrected, by_autograd)[0]:
                failed.append(f"{_id(formula)}: the correction disagrees with autograd")
            continue
        ok, _, share, evidence = holds(formula.evaluate, by_autograd)
        if not ok:
            failed.append(
                f"{_id(formula)}: as written {evidence[0]!r}, autograd {evidence[1]!r} ({share:.3g} of tolerance)"
            )
        try:
            if not holds(formula.evaluate, by_manual)[0]:
                failed.append(f"{_id(formula)}: disagrees with manual")
        except KeyError:
            pass  # the derivative of the slide's expression itself: only autograd evaluates it
    assert not failed, "\n".join(failed)


def test_every_formula_is_checked_at_random_points():
    """The test above covers each formula: every one belongs to a network it draws, and every
    known-wrong formula has a correction to check in its place."""
    assert {f.net for f in FORMULAS} == set(NETS)
    assert all(f.evaluate_corrected is not None for f in WRONG)


@pytest.mark.parametrize("formula", WRONG, ids=_id)
def test_known_wrong_formula_disagrees_with_autograd(formula):
    rng = np.random.default_rng(1)
    results = [holds(formula.evaluate, autograd_quantities(draw_point(formula.net, rng)))[0] for _ in range(5)]
    assert not any(results)


@pytest.mark.parametrize("formula", [f for f in FORMULAS if f.symbolic], ids=_id)
def test_symbolic(formula):
    assert symbolic_identity(formula.evaluate, formula.net) is (formula.why is None)
    if formula.evaluate_corrected is not None:
        assert symbolic_identity(formula.evaluate_corrected, formula.net)


def test_every_slide_with_a_formula_is_covered():
    slides = {f.slide for f in FORMULAS}
    assert slides == {
        "Training a neural network",
        "Single layer network",
        "Sigmoid",
        "tanh",
        "ReLU",
        "Single layer network – weight update",
        "2 layer network",
        "3 layer network",
        "2 layer network with sigmoid activation",
        "Looking backwards....",
        "Looking backwards: second layer",
        "Looking backwards: first layer",
        "First layer weight updates",
        "Weight updates: compact representation",
        "Representation in vector form",
        "Going forward....",
        "Going backward....",
    }


def test_report_flags_exactly_the_known_wrong_formulas(tmp_path):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "check_slides", Path(__file__).resolve().parents[1] / "scripts" / "check_slides.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "slides.json"
    assert script.main(["--points", "3", "--no-sympy", "--json", str(out)]) == 0
    records = json.loads(out.read_text(encoding="utf-8"))
    assert len(records) == len(FORMULAS)
    for key in ("slide", "formula", "matches_autograd", "symbolic", "corrected", "corrected_matches_autograd"):
        assert all(key in r for r in records)
    flagged = {(r["slide"], r["function"]) for r in records if not r["matches_autograd"]}
    assert flagged == {(f.slide, f"manual.slides.{f.name}") for f in WRONG}
    assert all(r["corrected_matches_autograd"] for r in records if r["corrected"])
    assert all(r["corrected"] is None for r in records if r["matches_autograd"])


def test_evidence_is_the_worst_failing_point():
    """The report's evidence pair is where the formula is furthest off, which is where the largest
    difference it prints was measured (not the last failing point checked)."""
    from torch_ref.slides.check import check_formula

    rng = np.random.default_rng(0)
    for formula in WRONG:
        outcome = check_formula(formula, [draw_point(formula.net, rng) for _ in range(20)], symbolic=False)
        as_written, autograd = outcome.evidence
        assert abs(as_written - autograd) == outcome.largest_difference
