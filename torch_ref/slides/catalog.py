"""The catalogue: every formula of the slides, with what it must equal.

Each :class:`Formula` names its slide (title as the seed spells it), the formula as written, the
transcription in :mod:`manual.slides`, the network it lives on and ``evaluate(q)``: given the
quantities ``q`` of one flavour (autograd, manual or sympy, see :mod:`.quantities`) it returns
``(as_written, should_equal, magnitude)`` over every index the formula ranges over. ``magnitude``
feeds the tolerance (see :mod:`.check`). A formula that does not hold carries its correction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from manual.slides import activations as A
from manual.slides import losses
from manual.slides import single_layer as S
from manual.slides import three_layer as T
from manual.slides import two_layer as B
from manual.slides import vector_form as V

__all__ = ["FORMULAS", "Formula"]

Evaluate = Callable[[dict], tuple[Any, Any, Any]]


@dataclass(frozen=True)
class Formula:
    slide: str
    formula: str
    function: Callable
    net: str
    evaluate: Evaluate
    symbolic: bool = True  # a derivation step or closed form that sympy can confirm
    corrected: str | None = None
    evaluate_corrected: Evaluate | None = None
    why: str | None = None  # one sentence on what is wrong, for a formula that does not hold

    @property
    def name(self) -> str:
        return f"{self.function.__module__.rsplit('.', 1)[-1]}.{self.function.__name__}"


def _arr(values: list) -> np.ndarray:
    return np.array(values, dtype=object)


def _g(q: dict, key: str, *index: int) -> Any:
    """A gradient's error magnitude from the tolerance model (0 for sympy)."""
    scale = q.get(key)
    return 0.0 if scale is None else scale[index] if index else scale


JI = [(j, i) for j in range(2) for i in range(2)]
J2 = range(2)
D1 = range(3)


def _each(pairs, f):
    """Evaluate ``f(*index) -> (value, target, magnitude)`` for every index, stacked."""
    rows = [f(*k) if isinstance(k, tuple) else f(k) for k in pairs]
    return tuple(_arr([r[n] for r in rows]) for n in range(3))


def _single_grad(line: Callable[[dict, int], Any]) -> Evaluate:
    return lambda q: _each(D1, lambda i: (line(q, i), q["dL_dw"][i], _g(q, "scale_dw", i)))


def _w2_grad(line: Callable[[dict, int], Any]) -> Evaluate:
    return lambda q: _each(J2, lambda j: (line(q, j), q["dL_dw2"][j, 0], _g(q, "scale_dw2", j, 0)))


def _w1_grad(line: Callable[[dict, int, int], Any]) -> Evaluate:
    return lambda q: _each(JI, lambda j, i: (line(q, j, i), q["dL_dw1"][j, i], _g(q, "scale_dw1", j, i)))


def _update(w_key: str, index_set, line: Callable[..., Any]) -> Evaluate:
    """An update ``w := ...`` against the reference's updated weights; magnitude |w| + xi (|g| + M_g)."""
    g_key = {"w": "dL_dw", "w1": "dL_dw1", "w2": "dL_dw2"}[w_key]
    s_key = "scale_" + g_key[3:]

    def at(k: tuple) -> Any:
        return k[0] if w_key == "w" else (k[0], 0) if w_key == "w2" else k

    def evaluate(q: dict) -> tuple[Any, Any, Any]:
        def one(*k: int) -> tuple[Any, Any, Any]:
            w, g = q[w_key][at(k)], q[g_key][at(k)]
            scale = q.get(s_key)
            magnitude = 0.0 if scale is None else abs(w) + q["xi"] * (abs(g) + scale[at(k)])
            return line(q, *k), q["updated_" + w_key][at(k)], magnitude

        return _each(index_set, one)

    return evaluate


def _value(f: Callable[[dict], Any], key: str, magnitude: float = 0.0) -> Evaluate:
    return lambda q: (_arr([f(q)]), _arr([q[key]]), _arr([magnitude]))


def _matrix(f: Callable[[dict], Any], key: str, magnitude: Callable[[dict], Any] | None = None) -> Evaluate:
    """A vector-form line against ``q[key]``; ``magnitude`` gives the error magnitude of what the
    line computes (its sums on absolute values), for lines whose sums may cancel."""

    def evaluate(q):
        value, target = np.asarray(f(q), dtype=float), np.asarray(q[key], dtype=float)
        m = (
            np.zeros(value.shape)
            if magnitude is None or not isinstance(value.flat[0], float)
            else np.broadcast_to(np.asarray(magnitude(q), dtype=float), value.shape)
        )
        return value, target.reshape(value.shape), m

    return evaluate


# error magnitudes of the vector-form lines (sums on absolute values, errors carried on; the
# constant C of torch_ref.slides.check absorbs the small counts)
def _m_I1(q: dict) -> np.ndarray:
    return np.abs(q["w1"]).T @ np.abs(_col(q["x"]))


def _m_I2(q: dict) -> np.ndarray:
    return np.abs(q["w2"]).T @ (np.abs(_col(q["z"])) + _m_I1(q))


def _m_delta2(q: dict) -> np.ndarray:
    return abs(q["y_star"]) + abs(q["y"]) + _m_I2(q)


def _m_delta1(q: dict) -> np.ndarray:
    z = _col(q["z"])
    d2 = abs(q["y_star"] - q["y"])
    return (np.abs(q["w2"]) * (_m_delta2(q) * z * (1 - z) + d2 * _m_I1(q))).T  # a row, as delta^(1)


def _m_update_w2(q: dict) -> np.ndarray:
    d2 = abs(q["y_star"] - q["y"])
    return np.abs(q["w2"]) + q["xi"] * ((np.abs(_col(q["z"])) + _m_I1(q)) * d2 + np.abs(_col(q["z"])) * _m_delta2(q))


def _m_update_w1(q: dict) -> np.ndarray:
    z = _col(q["z"])
    d1 = np.abs(q["w2"]) * abs(q["y_star"] - q["y"]) * z * (1 - z)
    return np.abs(q["w1"]) + q["xi"] * np.abs(_col(q["x"])) @ (d1.T + _m_delta1(q))


def _col(v: Any) -> np.ndarray:
    return np.asarray(v, dtype=float).reshape(-1, 1)


TRAIN = "Training a neural network"
SINGLE = "Single layer network"
UPDATE = "Single layer network – weight update"
TWO = "2 layer network"
THREE = "3 layer network"
TWO_SIG = "2 layer network with sigmoid activation"
BACK = "Looking backwards...."
BACK2 = "Looking backwards: second layer"
BACK1 = "Looking backwards: first layer"
FIRST_UPD = "First layer weight updates"
COMPACT = "Weight updates: compact representation"
VEC = "Representation in vector form"
FWD = "Going forward...."
BWD = "Going backward...."

_ys = lambda q: q["y_star"]

FORMULAS: tuple[Formula, ...] = (
    (  # noqa: RUF005 (three blocks in slide order read better than one unpacking)
        # ------------------------------------------------------------ Training a neural network
        Formula(
            TRAIN,
            r"\sum_{n=1}^N L(y^{(n)}, y^{*(n)})",
            losses.objective,
            "single",
            _value(lambda q: losses.objective([losses.binary_cross_entropy(q["y"], q["y_star"])]), "L"),
            False,
        ),
        Formula(
            TRAIN,
            r"L = \frac{1}{2} \sum_{j=1}^J (y_j - y_j^*)^2",
            losses.squared_loss,
            "single",
            _value(lambda q: losses.squared_loss(q["targets"], q["probs"]), "loss_squared"),
            False,
        ),
        Formula(
            TRAIN,
            r"L = -y \log(y^*) - (1 - y) \log(1 - y^*)",
            losses.binary_cross_entropy,
            "single",
            _value(lambda q: losses.binary_cross_entropy(q["y"], q["y_star"]), "loss_bce"),
            False,
        ),
        Formula(
            TRAIN,
            r"L = -\sum_{j=1}^J y_j \log y_j^*",
            losses.cross_entropy,
            "single",
            _value(lambda q: losses.cross_entropy(q["targets"], q["probs"]), "loss_ce"),
            False,
        ),
        Formula(
            TRAIN,
            r"w^{t+1} = w^t - \xi \nabla_{w^t} L",
            losses.gradient_descent,
            "single",
            _update("w", D1, lambda q, i: losses.gradient_descent(q["w"][i], q["dL_dw"][i], q["xi"])),
        ),
        # ------------------------------------------------------------ Single layer network, activations
        Formula(
            SINGLE,
            r"y^* = \mathcal{A}(w_1x_1 + w_2x_2 + \dots + w_Dx_D)",
            S.output_sum,
            "single",
            _value(lambda q: S.output_sum(q["w"], q["x"]), "y_star"),
        ),
        Formula(
            SINGLE,
            r"y^* = \mathcal{A}(\mathbf{w}^T \mathbf{x})",
            S.output_vector,
            "single",
            _value(lambda q: S.output_vector(q["w"], q["x"]), "y_star"),
        ),
        Formula(
            SINGLE,
            r"L = -y \log(y^*) - (1 - y) \log(1 - y^*)",
            losses.binary_cross_entropy,
            "single",
            _value(lambda q: losses.binary_cross_entropy(q["y"], q["y_star"]), "L"),
            False,
        ),
        Formula(
            "Sigmoid",
            r"\mathcal{A}(z) = \frac{1}{1 + \exp(-z)}",
            A.sigmoid,
            "single",
            _value(lambda q: A.sigmoid(q["v"]), "sigmoid"),
            False,
        ),
        Formula(
            "tanh",
            r"\mathcal{A}(z) = \frac{\exp(z) - \exp(-z)}{\exp(z) + \exp(-z)}",
            A.tanh,
            "single",
            # exp(z) - exp(-z) cancels near z = 0: its rounding is relative to exp(z) + exp(-z),
            # so the magnitude of the written quotient is (e^z + e^-z) / (e^z + e^-z) = 1
            _value(lambda q: A.tanh(q["v"]), "tanh", magnitude=1.0),
        ),
        Formula(
            "ReLU", r"\mathcal{A}(z) = \max(z, 0)", A.relu, "single", _value(lambda q: A.relu(q["v"]), "relu"), False
        ),
        # ------------------------------------------------------------ Single layer network – weight update
        Formula(
            UPDATE,
            r"w_i := w_i - \xi \frac{\partial L}{\partial w_i}",
            S.update,
            "single",
            _update("w", D1, lambda q, i: S.update(q["w"][i], q["dL_dw"][i], q["xi"])),
        ),
        Formula(
            UPDATE,
            r"\frac{\partial L}{\partial w_i} = \frac{\partial}{\partial w_i}\left(-y \log(y^*) - (1 - y) \log(1 - y^*)\right)",
            S.loss_of_weights,
            "single",
            _single_grad(lambda q, i: q["dtranscribed"][0][i, 0]),
        ),
        Formula(
            UPDATE,
            r"= \left(-\frac{y}{y^*} + \frac{(1 - y)}{(1 - y^*)}\right) \frac{\partial y^*}{\partial w_i}",
            S.gradient_line2,
            "single",
            _single_grad(lambda q, i: S.gradient_line2(q["y"], q["y_star"], q["dy_star_dw"][i])),
        ),
        Formula(
            UPDATE,
            r"= \left(\frac{y^* - y}{y^*(1 - y^*)}\right) \frac{\partial \mathcal{A}(w_1 x_1 + \dots + w_D x_D)}{\partial w_i}",
            S.gradient_line3,
            "single",
            _single_grad(lambda q, i: S.gradient_line3(q["y"], q["y_star"], q["dy_star_dw"][i])),
        ),
        Formula(
            UPDATE,
            r"= \left(\frac{y^* - y}{y^*(1 - y^*)}\right) (y^*(1 - y^*)) x_i",
            S.gradient_line4,
            "single",
            _single_grad(lambda q, i: S.gradient_line4(q["y"], q["y_star"], q["x"][i])),
        ),
        Formula(
            UPDATE,
            r"= (y^* - y) x_i",
            S.gradient_line5,
            "single",
            _single_grad(lambda q, i: S.gradient_line5(q["y"], q["y_star"], q["x"][i])),
        ),
        Formula(
            UPDATE,
            r"w_i := w_i - \xi (y^* - y) x_i",
            S.update_closed_form,
            "single",
            _update("w", D1, lambda q, i: S.update_closed_form(q["w"][i], q["y"], q["y_star"], q["x"][i], q["xi"])),
        ),
        Formula(
            UPDATE,
            r"\mathbf{w} := \mathbf{w} - \xi (y^* - y) \mathbf{x}",
            S.update_vector,
            "single",
            _update("w", D1, lambda q, i: S.update_vector(q["w"], q["y"], q["y_star"], q["x"], q["xi"])[i]),
        ),
        # ------------------------------------------------------------ 2 and 3 layer networks
        Formula(
            TWO,
            r"\frac{\partial L}{\partial w_{22}^{(1)}} = \frac{\partial L}{\partial y^*} \frac{\partial y^*}{\partial z_2} \frac{\partial z_2}{\partial w_{22}^{(1)}}",
            B.chain_rule_w22,
            "two",
            lambda q: (
                _arr([B.chain_rule_w22(q["dL_dy_star"], q["dy_star_dz"][1], q["dz_dw1"][1, 1])]),
                _arr([q["dL_dw1"][1, 1]]),
                _arr([_g(q, "scale_dw1", 1, 1)]),
            ),
        ),
        Formula(
            THREE,
            r"\frac{\partial L}{\partial w_{22}^{(1)}} = \frac{\partial L}{\partial y^*} \frac{\partial y^*}{\partial z_2^{(2)}} \frac{\partial z_2^{(2)}}{\partial z_2^{(1)}} \frac{\partial z_2^{(1)}}{\partial w_{22}^{(1)}} + \frac{\partial L}{\partial y^*} \frac{\partial y^*}{\partial z_1^{(2)}} \frac{\partial z_1^{(2)}}{\partial z_1^{(1)}} \frac{\partial z_1^{(1)}}{\partial w_{22}^{(1)}}",
            T.path_sum_w22,
            "three",
            lambda q: (
                _arr(
                    [
                        T.path_sum_w22(
                            q["dL_dy_star"],
                            q["dy_dz2"][1],
                            q["dz2_dz1"][1, 1],
                            q["dz1_dw22"][1],
                            q["dy_dz2"][0],
                            q["dz2_dz1"][0, 0],
                            q["dz1_dw22"][0],
                        )
                    ]
                ),
                _arr([q["dL_dw22"]]),
                _arr([_g(q, "scale_dw1", 1, 1)]),
            ),
            corrected=r"\frac{\partial L}{\partial y^*} \frac{\partial y^*}{\partial z_2^{(2)}} \frac{\partial z_2^{(2)}}{\partial z_2^{(1)}} \frac{\partial z_2^{(1)}}{\partial w_{22}^{(1)}} + \frac{\partial L}{\partial y^*} \frac{\partial y^*}{\partial z_1^{(2)}} \frac{\partial z_1^{(2)}}{\partial z_2^{(1)}} \frac{\partial z_2^{(1)}}{\partial w_{22}^{(1)}}",
            evaluate_corrected=lambda q: (
                _arr(
                    [
                        T.path_sum_w22_corrected(
                            q["dL_dy_star"],
                            q["dy_dz2"][1],
                            q["dz2_dz1"][1, 1],
                            q["dz1_dw22"][1],
                            q["dy_dz2"][0],
                            q["dz2_dz1"][0, 1],
                        )
                    ]
                ),
                _arr([q["dL_dw22"]]),
                _arr([_g(q, "scale_dw1", 1, 1)]),
            ),
            why="the red path ends in dz_1^(1)/dw_22^(1), which is 0; w_22^(1) reaches z_1^(2) only through "
            "z_2^(1), so the red path's last factors are dz_1^(2)/dz_2^(1) dz_2^(1)/dw_22^(1).",
        ),
        Formula(
            TWO_SIG,
            r"z_1 = \mathcal{A}(w_{11}^{(1)}x_1 + w_{21}^{(1)}x_2)",
            B.hidden_output,
            "two",
            lambda q: (_arr([B.hidden_output(q["w1"], q["x"], 0)]), _arr([q["z"][0]]), _arr([0.0])),
        ),
        Formula(
            TWO_SIG,
            r"z_2 = \mathcal{A}(w_{12}^{(1)}x_1 + w_{22}^{(1)}x_2)",
            B.hidden_output,
            "two",
            lambda q: (_arr([B.hidden_output(q["w1"], q["x"], 1)]), _arr([q["z"][1]]), _arr([0.0])),
        ),
        Formula(
            TWO_SIG,
            r"y^* = \mathcal{A}(w_{11}^{(2)}z_1 + w_{21}^{(2)}z_2)",
            B.output,
            "two",
            _value(lambda q: B.output(q["w2"], q["z"]), "y_star"),
        ),
        Formula(
            TWO_SIG,
            r"\mathcal{A}(z) = \frac{1}{1 + \exp(-z)}",
            A.sigmoid,
            "two",
            lambda q: (_arr([A.sigmoid(q["v"])]), _arr([q["sigmoid"]]), _arr([0.0])),
            False,
        ),
        Formula(
            TWO_SIG,
            r"L = -y \log(y^*) - (1 - y) \log(1 - y^*)",
            losses.binary_cross_entropy,
            "two",
            _value(lambda q: losses.binary_cross_entropy(q["y"], q["y_star"]), "L"),
            False,
        ),
        # ------------------------------------------------------------ Looking backwards....
        Formula(
            BACK,
            r"\frac{\partial L}{\partial w_{j1}^{(2)}} = \frac{\partial (-y \log(y^*) - (1-y) \log(1-y^*))}{\partial w_{j1}^{(2)}}",
            B.loss_of_weights,
            "two",
            _w2_grad(lambda q, j: q["dtranscribed"][1][j, 0]),
        ),
        Formula(
            BACK,
            r"= \left(-\frac{y}{y^*} + \frac{(1-y)}{(1-y^*)} \right) \frac{\partial \mathcal{A}(\sum_{j=1}^2 w_{j1}^{(2)} z_j)}{\partial w_{j1}^{(2)}}",
            B.second_layer_line2,
            "two",
            _w2_grad(lambda q, j: B.second_layer_line2(q["y"], q["y_star"], q["dy_star_dw2"][j])),
        ),
        Formula(
            BACK,
            r"= \left(\frac{y^* - y}{y^*(1-y^*)} \right) \mathcal{A}'(\mathbf{v}_1^{(2)}) z_j",
            B.second_layer_line3,
            "two",
            _w2_grad(lambda q, j: B.second_layer_line3(q["y"], q["y_star"], q["w2"], q["z"], j)),
        ),
        Formula(
            BACK,
            r"= (y^* - y) z_j",
            B.second_layer_line4,
            "two",
            _w2_grad(lambda q, j: B.second_layer_line4(q["y"], q["y_star"], q["z"][j])),
        ),
        Formula(
            BACK2,
            r"w_{j1}^{(2)} := w_{j1}^{(2)} - \xi \frac{\partial L}{\partial w_{j1}^{(2)}}",
            B.second_layer_update,
            "two",
            _update("w2", J2, lambda q, j: B.second_layer_update(q["w2"][j, 0], q["dL_dw2"][j, 0], q["xi"])),
        ),
        Formula(
            BACK2,
            r":= w_{j1}^{(2)} - \xi (y^* - y) z_j",
            B.second_layer_update_closed_form,
            "two",
            _update(
                "w2",
                J2,
                lambda q, j: B.second_layer_update_closed_form(q["w2"][j, 0], q["y"], q["y_star"], q["z"][j], q["xi"]),
            ),
        ),
        # ------------------------------------------------------------ Looking backwards: first layer
        Formula(
            BACK1,
            r"\frac{\partial L}{\partial w_{ji}^{(1)}} = \frac{\partial \left(-y \log(y^*) - (1 - y) \log(1 - y^*) \right)}{\partial w_{ji}^{(1)}}",
            B.loss_of_weights,
            "two",
            _w1_grad(lambda q, j, i: q["dtranscribed"][0][j, i]),
        ),
        Formula(
            BACK1,
            r"= \left(-\frac{y}{y^*} + \frac{(1 - y)}{(1 - y^*)} \right) \frac{\partial}{\partial w_{ji}^{(1)}} \left(\mathcal{A} \left(\sum_{k=1}^2 w_{k1}^{(2)} z_k \right) \right)",
            B.first_layer_line2,
            "two",
            _w1_grad(lambda q, j, i: B.first_layer_line2(q["y"], q["y_star"], q["dy_star_dw1"][j, i])),
        ),
        Formula(
            BACK1,
            r"= \left(\frac{y^* - y}{y^* (1 - y^*)} \right) \frac{\partial}{\partial w_{ji}^{(1)}} \left(\mathcal{A} \left(\sum_{k=1}^2 w_{k1}^{(2)} \mathcal{A} \left(\sum_{m=1}^D w_{mk}^{(1)} x_m \right) \right) \right)",
            B.first_layer_line3,
            "two",
            _w1_grad(lambda q, j, i: B.first_layer_line3(q["y"], q["y_star"], q["dy_star_dw1"][j, i])),
        ),
    )
    + tuple(
        # the second and third "Looking backwards: first layer" slides both show these two lines
        Formula(BACK1, text, fn, "two", ev)
        for _ in range(2)
        for text, fn, ev in (
            (
                r"= \left(\frac{y^* - y}{y^*(1 - y^*)} \right) \mathcal{A}'(\mathbf{v}_1^{(2)}) w_{i1}^{(2)} \frac{\partial \mathcal{A}(\sum_{m=1}^D w_{mi}^{(1)} x_m)}{\partial w_{ji}^{(1)}}",
                B.first_layer_line4,
                _w1_grad(
                    lambda q, j, i: B.first_layer_line4(q["y"], q["y_star"], q["w2"], q["z"], i, q["dz_dw1"][j, i])
                ),
            ),
            (
                r"= \left(\frac{y^* - y}{y^*(1 - y^*)} \right) \mathcal{A}'(\mathbf{v}_1^{(2)}) w_{i1}^{(2)} \mathcal{A}'(\mathbf{v}_i^{(1)}) x_j",
                B.first_layer_line5,
                _w1_grad(
                    lambda q, j, i: B.first_layer_line5(q["y"], q["y_star"], q["w1"], q["w2"], q["x"], q["z"], j, i)
                ),
            ),
        )
    )
    + (
        Formula(
            BACK1,
            r"\mathcal{A}'(\mathbf{v}_1^{(2)}) = y^*(1 - y^*)",
            A.sigmoid_derivative_from_output,
            "two",
            lambda q: (_arr([A.sigmoid_derivative_from_output(q["y_star"])]), _arr([q["dA_I"][1][0]]), _arr([0.0])),
        ),
        Formula(
            BACK1,
            r"\mathcal{A}'(\mathbf{v}_i^{(1)}) = z_i(1 - z_i)",
            A.sigmoid_derivative_from_output,
            "two",
            lambda q: _each(J2, lambda i: (A.sigmoid_derivative_from_output(q["z"][i]), q["dA_I"][0][i], 0.0)),
        ),
        Formula(
            BACK1,
            r"= \left(\frac{y^* - y}{y^*(1 - y^*)} \right) y^*(1 - y^*) w_{i1}^{(2)} z_i(1 - z_i) x_j",
            B.first_layer_line6,
            "two",
            _w1_grad(lambda q, j, i: B.first_layer_line6(q["y"], q["y_star"], q["w2"], q["z"], q["x"], j, i)),
        ),
        Formula(
            BACK1,
            r"= (y^* - y) z_i(1 - z_i) w_{i1}^{(2)} x_j",
            B.first_layer_line7,
            "two",
            _w1_grad(lambda q, j, i: B.first_layer_line7(q["y"], q["y_star"], q["w2"], q["z"], q["x"], j, i)),
        ),
        Formula(
            FIRST_UPD,
            r"w_{ji}^{(1)} := w_{ji}^{(1)} - \xi \frac{\partial L}{\partial w_{ji}^{(1)}}",
            B.first_layer_update,
            "two",
            _update("w1", JI, lambda q, j, i: B.first_layer_update(q["w1"][j, i], q["dL_dw1"][j, i], q["xi"])),
        ),
        Formula(
            FIRST_UPD,
            r":= w_{ji}^{(1)} - \xi w_{i1}^{(2)} (y^* - y) z_i (1 - z_i) x_j",
            B.first_layer_update_closed_form,
            "two",
            _update(
                "w1",
                JI,
                lambda q, j, i: B.first_layer_update_closed_form(
                    q["w1"][j, i], q["y"], q["y_star"], q["w2"], q["z"], q["x"], j, i, q["xi"]
                ),
            ),
        ),
        # ------------------------------------------------------------ compact representation
        Formula(
            COMPACT,
            r"w_{j1}^{(2)} := w_{j1}^{(2)} - \xi \delta^{(2)} z_j",
            B.compact_update_w2,
            "two",
            _update(
                "w2",
                J2,
                lambda q, j: B.compact_update_w2(
                    q["w2"][j, 0], B.compact_delta2(q["y"], q["y_star"]), q["z"][j], q["xi"]
                ),
            ),
        ),
        Formula(
            COMPACT,
            r"\delta^{(2)} = (y^* - y)",
            B.compact_delta2,
            "two",
            _value(lambda q: B.compact_delta2(q["y"], q["y_star"]), "delta2"),
        ),
        Formula(
            COMPACT,
            r"w_{ji}^{(1)} := w_{ji}^{(1)} - \xi \delta_i^{(1)} x_j",
            B.compact_update_w1,
            "two",
            _update(
                "w1",
                JI,
                lambda q, j, i: B.compact_update_w1(
                    q["w1"][j, i],
                    B.compact_delta1(B.compact_delta2(q["y"], q["y_star"]), q["w2"], q["z"], i),
                    q["x"][j],
                    q["xi"],
                ),
            ),
        ),
        Formula(
            COMPACT,
            r"\delta_i^{(1)} = \delta^{(2)} w_{i1}^{(2)} z_i (1 - z_i)",
            B.compact_delta1,
            "two",
            lambda q: _each(
                J2,
                lambda i: (
                    B.compact_delta1(B.compact_delta2(q["y"], q["y_star"]), q["w2"], q["z"], i),
                    q["delta1"][i],
                    0.0,
                ),
            ),
        ),
        # ------------------------------------------------------------ vector form (numeric checks only)
        Formula(
            VEC,
            r"\mathbf{u}^{(1)} = [x_1, x_2, \dots, x_D]^T",
            V.layer_input,
            "vector",
            _matrix(lambda q: V.layer_input(np.asarray(q["x"])), "x"),
            False,
        ),
        Formula(
            VEC,
            r"\mathbf{u}^{(2)} = [z_1, z_2, \dots, z_H]^T",
            V.layer_input,
            "vector",
            _matrix(lambda q: V.layer_input(np.asarray(q["z"])), "O1"),
            False,
        ),
        Formula(
            FWD,
            r"\mathbf{I}^{(1)} = (\mathbf{w}^{(1)})^T \mathbf{u}^{(1)}",
            V.forward_I,
            "vector",
            _matrix(lambda q: V.forward_I(q["w1"], _col(q["x"])), "I1", _m_I1),
            False,
        ),
        Formula(
            FWD,
            r"\mathbf{O}^{(1)} = \mathcal{A}(\mathbf{I}^{(1)}) = \mathbf{u}^{(2)}",
            V.forward_O,
            "vector",
            _matrix(lambda q: V.forward_O(V.forward_I(q["w1"], _col(q["x"]))), "O1", _m_I1),
            False,
        ),
        Formula(
            FWD,
            r"\mathbf{I}^{(2)} = (\mathbf{w}^{(2)})^T \mathbf{u}^{(2)}",
            V.forward_I,
            "vector",
            _matrix(lambda q: V.forward_I(q["w2"], _col(q["z"])), "I2", _m_I2),
            False,
        ),
        Formula(
            FWD,
            r"\mathbf{O}^{(2)} = \mathcal{A}(\mathbf{I}^{(2)}) = y^*",
            V.forward_O,
            "vector",
            _matrix(lambda q: V.forward_O(V.forward_I(q["w2"], _col(q["z"]))), "O2", _m_I2),
            False,
        ),
        Formula(
            FWD,
            r"L = -y \log(y^*) - (1 - y) \log(1 - y^*)",
            losses.binary_cross_entropy,
            "vector",
            _value(lambda q: losses.binary_cross_entropy(q["y"], q["y_star"]), "L"),
            False,
        ),
        Formula(
            BWD,
            r"\mathbf{w}^{(2)} = \mathbf{w}^{(2)} - \xi \mathbf{u}^{(2)} \delta^{(2)}",
            V.backward_update_w2,
            "vector",
            _matrix(
                lambda q: V.backward_update_w2(
                    q["w2"], _col(q["z"]), np.array([[V.backward_delta2(q["y"], q["y_star"])]]), q["xi"]
                ),
                "updated_w2",
                _m_update_w2,
            ),
            False,
        ),
        Formula(
            BWD,
            r"\delta^{(2)} = (y^* - y)",
            V.backward_delta2,
            "vector",
            _matrix(lambda q: np.array([[V.backward_delta2(q["y"], q["y_star"])]]), "delta2", _m_delta2),
            False,
        ),
        Formula(
            BWD,
            r"\mathbf{w}^{(1)} = \mathbf{w}^{(1)} - \xi \mathbf{u}^{(1)} \delta^{(1)}",
            V.backward_update_w1,
            "vector",
            _matrix(
                lambda q: V.backward_update_w1(
                    q["w1"],
                    _col(q["x"]),
                    V.backward_delta1(np.array([[V.backward_delta2(q["y"], q["y_star"])]]), q["w2"], _col(q["z"])),
                    q["xi"],
                ),
                "updated_w1",
                _m_update_w1,
            ),
            False,
        ),
        Formula(
            BWD,
            r"\delta^{(1)} = \left(\delta^{(2)} (\mathbf{w}^{(2)})^T \right) \odot \mathcal{Z},\ \mathcal{Z} = [z_1(1 - z_1), \dots, z_H(1 - z_H)]",
            V.backward_delta1,
            "vector",
            _matrix(
                lambda q: V.backward_delta1(
                    np.array([[V.backward_delta2(q["y"], q["y_star"])]]), q["w2"], _col(q["z"])
                ),
                "delta1",
                _m_delta1,
            ),
            False,
        ),
    )
)
