"""The right formula a diagnosis refers to, as MathML, for the page beside the diagnosis.

Each entry pairs a pattern of the diagnosis' words with the formula the mistake departs from, in the
slides' symbols (u the layer's input, I its pre-activation, O its output, δ the delta, W in the
(in, out) layout) or the layer's own. A diagnosis no pattern fits gets no formula: the page never
shows a formula it cannot tie to the sentence.
"""

from __future__ import annotations

import re

__all__ = ["FORMULAS", "formula_for", "names_a_mistake"]


def _m(body: str) -> str:
    return f'<math display="block"><mrow>{body}</mrow></math>'


_DW = (
    "<msub><mo>∇</mo><msup><mi>W</mi><mrow><mo>(</mo><mi>l</mi><mo>)</mo></mrow></msup></msub><mi>E</mi><mo>=</mo>"
    "<msup><mi>u</mi><mrow><mo>(</mo><mi>l</mi><mo>)</mo><mo>⊤</mo></mrow></msup>"
    "<msup><mi>δ</mi><mrow><mo>(</mo><mi>l</mi><mo>)</mo></mrow></msup>"
)
_MEAN = (
    "<msub><mo>∇</mo><mi>θ</mi></msub><mi>E</mi><mo>=</mo><mfrac><mn>1</mn><mi>N</mi></mfrac>"
    "<munderover><mo>∑</mo><mrow><mi>n</mi><mo>=</mo><mn>1</mn></mrow><mi>N</mi></munderover>"
    "<msub><mo>∇</mo><mi>θ</mi></msub><msub><mi>E</mi><mi>n</mi></msub>"
)
_NORM = (
    "<msub><mi>δ</mi><mi>x</mi></msub><mo>=</mo><mfrac><mn>1</mn><mi>σ</mi></mfrac><mo>⊙</mo><mo>(</mo>"
    "<mi>g</mi><mo>−</mo><msub><mtext>mean</mtext><mi>{axis}</mi></msub><mo>(</mo><mi>g</mi><mo>)</mo><mo>−</mo>"
    "<mover><mi>x</mi><mo>^</mo></mover><mo>⊙</mo><msub><mtext>mean</mtext><mi>{axis}</mi></msub><mo>(</mo>"
    "<mi>g</mi><mo>⊙</mo><mover><mi>x</mi><mo>^</mo></mover><mo>)</mo><mo>)</mo>"
)
_ADAM = (
    "<msub><mover><mi>m</mi><mo>^</mo></mover><mi>t</mi></msub><mo>=</mo><mfrac><msub><mi>m</mi><mi>t</mi></msub>"
    "<mrow><mn>1</mn><mo>−</mo><msubsup><mi>β</mi><mn>1</mn><mi>t</mi></msubsup></mrow></mfrac><mo>,</mo><mspace width='1em'/>"
    "<msub><mover><mi>v</mi><mo>^</mo></mover><mi>t</mi></msub><mo>=</mo><mfrac><msub><mi>v</mi><mi>t</mi></msub>"
    "<mrow><mn>1</mn><mo>−</mo><msubsup><mi>β</mi><mn>2</mn><mi>t</mi></msubsup></mrow></mfrac><mo>,</mo><mspace width='1em'/>"
    "<msub><mi>θ</mi><mi>t</mi></msub><mo>=</mo><msub><mi>θ</mi><mrow><mi>t</mi><mo>−</mo><mn>1</mn></mrow></msub><mo>−</mo>"
    "<mi>η</mi><mfrac><msub><mover><mi>m</mi><mo>^</mo></mover><mi>t</mi></msub><mrow><msqrt><msub><mover><mi>v</mi><mo>^</mo>"
    "</mover><mi>t</mi></msub></msqrt><mo>+</mo><mi>ε</mi></mrow></mfrac>"
)
_DELTA = (
    "<msup><mi>δ</mi><mrow><mo>(</mo><mi>l</mi><mo>)</mo></mrow></msup><mo>=</mo><mo>(</mo>"
    "<msup><mi>δ</mi><mrow><mo>(</mo><mi>l</mi><mo>+</mo><mn>1</mn><mo>)</mo></mrow></msup>"
    "<msup><mi>W</mi><mrow><mo>(</mo><mi>l</mi><mo>+</mo><mn>1</mn><mo>)</mo><mo>⊤</mo></mrow></msup><mo>)</mo>"
    "<mo>⊙</mo><msup><mi>A</mi><mo>′</mo></msup><mo>(</mo><msup><mi>I</mi><mrow><mo>(</mo><mi>l</mi><mo>)</mo></mrow>"
    "</msup><mo>)</mo>"
)
_OUT = (
    "<msup><mi>δ</mi><mrow><mo>(</mo><mi>L</mi><mo>)</mo></mrow></msup><mo>=</mo><msup><mi>O</mi><mrow><mo>(</mo><mi>L</mi>"
    "<mo>)</mo></mrow></msup><mo>−</mo><mi>Y</mi><mspace width='1em'/><mtext>(a canonical output and loss, summed)</mtext>"
)
_SIGMOID = "<msup><mi>σ</mi><mo>′</mo></msup><mo>(</mo><mi>I</mi><mo>)</mo><mo>=</mo><mi>O</mi><mo>(</mo><mn>1</mn><mo>−</mo><mi>O</mi><mo>)</mo>"
_TANH = "<msup><mi>tanh</mi><mo>′</mo></msup><mo>(</mo><mi>I</mi><mo>)</mo><mo>=</mo><mn>1</mn><mo>−</mo><msup><mi>O</mi><mn>2</mn></msup>"
_RESIDUAL = (
    "<msub><mi>δ</mi><mi>x</mi></msub><mo>=</mo><msub><mi>δ</mi><mtext>out</mtext></msub><mo>+</mo>"
    "<msubsup><mi>J</mi><mtext>body</mtext><mo>⊤</mo></msubsup><msub><mi>δ</mi><mtext>out</mtext></msub>"
)
_CAUSAL = (
    "<msub><mi>P</mi><mrow><mi>i</mi><mi>j</mi></mrow></msub><mo>=</mo><mn>0</mn><mspace width='0.5em'/><mtext>for</mtext>"
    "<mspace width='0.5em'/><mi>j</mi><mo>&gt;</mo><mi>i</mi><mo>,</mo><mspace width='1em'/>"
    "<msub><mi>δ</mi><mi>S</mi></msub><mo>=</mo><mi>P</mi><mo>⊙</mo><mo>(</mo><msub><mi>δ</mi><mi>P</mi></msub><mo>−</mo>"
    "<mtext>rowsum</mtext><mo>(</mo><msub><mi>δ</mi><mi>P</mi></msub><mo>⊙</mo><mi>P</mi><mo>)</mo><mo>)</mo>"
)
_DROPOUT = (
    "<msub><mi>δ</mi><mi>x</mi></msub><mo>=</mo><mi>δ</mi><mo>⊙</mo><mfrac><msub><mi>m</mi><mi>t</mi></msub><mrow><mn>1</mn>"
    "<mo>−</mo><mi>p</mi></mrow></mfrac><mspace width='1em'/><mtext>(a fresh mask</mtext><mspace width='0.3em'/>"
    "<msub><mi>m</mi><mi>t</mi></msub><mspace width='0.3em'/><mtext>each step)</mtext>"
)
_POOL = (
    "<msub><mi>δ</mi><mi>x</mi></msub><mo>[</mo><msub><mtext>argmax</mtext><mtext>window</mtext></msub><mo>]</mo>"
    "<mo>+=</mo><msub><mi>δ</mi><mtext>out</mtext></msub>"
)

# (pattern of the diagnosis, what the formula is, the formula), the most specific first: a line about
# the output delta of a sigmoid layer is about the output delta, not the sigmoid's derivative
FORMULAS: tuple[tuple[str, str, str], ...] = (
    (r"transpos", "the weight gradient, W of shape (in, out)", _m(_DW)),
    (
        r"batch statistics|batch norm",
        "batch norm's input gradient, g = γ ⊙ δ_out and x̂ the normalized input, the means over the batch",
        _m(_NORM.format(axis="N")),
    ),
    (
        r"row statistics|layer.?norm|normali[sz]ation statistics",
        "layer norm's input gradient, g = γ ⊙ δ_out and x̂ the normalized input, the means over each row",
        _m(_NORM.format(axis="D")),
    ),
    (r"bias correction", "Adam's bias-corrected step", _m(_ADAM)),
    (r"causal", "causal attention: the mask and the softmax's backward", _m(_CAUSAL)),
    (r"residual gradient|skip's", "a residual block's δ: the skip's plus the body's", _m(_RESIDUAL)),
    (r"dropout's mask", "dropout's backward with the step's own mask", _m(_DROPOUT)),
    (r"max.?pool", "max pooling's backward: each window's δ to its maximum", _m(_POOL)),
    (r"output delta|shortcut|y\* - y|y - y\*", "the output delta", _m(_OUT)),
    (r"1/N|mean's|divided by N|not divided", "the mean's gradient over N examples", _m(_MEAN)),
    (r"A'|activation derivative|hidden delta", "the δ recursion", _m(_DELTA)),
    (r"sigmoid'|σ'", "the sigmoid's derivative", _m(_SIGMOID)),
    (r"tanh'", "tanh's derivative", _m(_TANH)),
)

# a diagnosis line that names no mistake: "no known pattern fits", "no known ... mistake reproduces",
# "none fits"; it gets no formula, and the diagram marks nothing for it
_NONE = re.compile(r"\bno known\b|\bnone (?:of them )?fits?\b|no (?:known )?pattern fits", re.IGNORECASE)


def names_a_mistake(diagnosis: str) -> bool:
    """Whether a diagnosis line names a mistake (verified on the case), not the absence of one."""
    return not _NONE.search(diagnosis)


# the places a network's diagnosis names ("in block 1 (the residual at layers[1]) > layers[1][0]
# layer_norm 4"): where the mistake is, not what it is, so never matched against the patterns
_PLACE = re.compile(r",? in (block \d+ \(the residual at layers\[\d+\]\)( > )?)?(layers(\[\d+\])+ [^.:;]*)?")


def formula_for(diagnosis: str) -> tuple[str, str] | None:
    """``(what, MathML)`` of the first formula whose pattern the diagnosis' words match (its places
    left out), or None."""
    if not names_a_mistake(diagnosis):
        return None
    words = _PLACE.sub(" ", diagnosis)
    for pattern, what, mathml in FORMULAS:
        if re.search(pattern, words, re.IGNORECASE):
            return what, mathml
    return None
