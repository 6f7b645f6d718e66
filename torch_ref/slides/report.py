"""The slide-by-slide report: one line per slide, then every formula that does not hold with its
evidence and its correction."""

from __future__ import annotations

from .check import Outcome

__all__ = ["render"]


def _mark(value: bool | None) -> str:
    return "n/a" if value is None else "yes" if value else "NO"


def render(outcomes: list[Outcome], *, verbose: bool = False) -> str:
    slides: dict[str, list[Outcome]] = {}
    for o in outcomes:
        slides.setdefault(o.formula.slide, []).append(o)
    points = max((o.points for o in outcomes), default=0)
    lines = [
        f"Slide-by-slide check: {len(outcomes)} formulas on {len(slides)} slides, {points} random float64 points each",
        f"{'slide':<42} {'formulas':>8} {'autograd':>9} {'manual':>7} {'sympy':>7} {'largest diff':>13}",
    ]
    for title, group in slides.items():
        numeric = sum(o.matches_autograd for o in group)
        manual_n = [o.matches_manual for o in group if o.matches_manual is not None]
        sym = [o.symbolic for o in group if o.symbolic is not None]
        largest = max(o.largest_difference for o in group)
        lines.append(
            f"{title:<42} {len(group):>8} {f'{numeric}/{len(group)}':>9} "
            f"{f'{sum(manual_n)}/{len(manual_n)}':>7} {f'{sum(sym)}/{len(sym)}' if sym else '-':>7} "
            f"{largest:>13.2e}"
        )
        if verbose:
            for o in group:
                lines.append(
                    f"    {o.formula.name:<44} autograd {_mark(o.matches_autograd):<4} manual "
                    f"{_mark(o.matches_manual):<4} sympy {_mark(o.symbolic):<4} "
                    f"diff {o.largest_difference:.2e}  {o.formula.formula[:60]}"
                )
    failing = [o for o in outcomes if not o.matches_autograd or o.symbolic is False]
    lines.append("")
    if not failing:
        lines.append("Every formula holds.")
    for o in failing:
        f = o.formula
        lines += [f"DOES NOT HOLD  [{f.slide}]  manual.slides.{f.name}", f"  as written: {f.formula}"]
        if o.evidence is not None:
            lines.append(
                f"  evidence:   as written {o.evidence[0]:.6g}, autograd {o.evidence[1]:.6g} at the point "
                f"furthest off (largest difference over the {o.points} points {o.largest_difference:.3g}); "
                f"sympy identity: {_mark(o.symbolic)}"
            )
        if f.why:
            lines.append(f"  what is wrong: {f.why}")
        if f.corrected:
            lines += [
                f"  corrected:  {f.corrected}",
                f"  corrected holds: autograd {_mark(o.corrected_matches_autograd)} "
                f"(largest difference {o.corrected_largest_difference:.2e}), "
                f"sympy {_mark(o.corrected_symbolic)}",
            ]
    n_bad = len(failing)
    lines.append(
        f"\n{len(outcomes) - n_bad} of {len(outcomes)} formulas hold; {n_bad} do not"
        + (" (corrections above)" if n_bad else "")
    )
    return "\n".join(lines)
