"""manual.network (networks of layers) against torch: the objective, the gradients and δ at the input
against float64 autograd of the torch twin (torch's own modules); ``Network.from_spec`` against the
slides' fully connected code, bit for bit; ``NetworkTrainer`` against ``torch.optim`` step by step;
the validation at the public boundary; and a wrong residual backward that test 1's tolerance catches."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings

import manual
import manual.network.residual
from manual.network import (
    Network,
    Residual,
    conv2d,
    dropout,
    embedding,
    layer_norm,
    linear,
    max_pool2d,
    self_attention,
)
from manual.network.trainer import NetworkTrainer
from torch_ref.networks.case import NetworkCase, network_case
from torch_ref.networks.draw import FAMILIES, network_cases
from torch_ref.networks.twin import load, module, params_of, reference
from torch_ref.strategies import cases

EPS = float(np.finfo(np.float64).eps)

# Test 1's tolerance: every gradient entry within GRAD_FACTOR * eps * κ * S of float64 autograd, S the
# largest |entry| over all of the network's gradients (and δ_X), κ the conditioning of its norms
# (_conditioning). Why 1e3: an entry is a sum of products along the δ recursion; float64 summation of
# n terms errs by at most ~n * eps * Σ|terms|, and a chain of d roundings by ~d * eps. These networks
# have d <= ~30 operations on a path and sums of n <= ~50 terms (N*T tokens, widths <= 9) whose terms
# are of the gradients' size; errors add up randomly, not at their worst, so <= ~100 eps is what is
# seen (150 drawn cases of each family), and 1e3 leaves a factor 10. The scale is network-wide, not
# per parameter: a gradient that is exactly 0 (the keys' bias under a softmax) is 0 on one side and
# rounding of its neighbours' size on the other. The objective is a sum of nonnegative per-example
# losses (every head drawn), so it is held to GRAD_FACTOR * eps * |E|.
GRAD_FACTOR = 1e3


def _as_torch(a: Any) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a))


def _autograd(case: NetworkCase) -> tuple[float, dict[str, np.ndarray]]:
    """E and every gradient (and "X" for a float input) by float64 autograd of the torch twin."""
    params = {k: _as_torch(v).to(torch.float64).requires_grad_() for k, v in case.params.items()}
    x = _as_torch(case.X)
    x = x.to(torch.float64).requires_grad_() if x.is_floating_point() else x
    y = _as_torch(case.Y)
    y = y.to(torch.float64) if y.is_floating_point() else y
    masks = {f"{k}.mask": _as_torch(m) for k, m in case.masks.items()}
    E = reference(case.net)(x, y, **params, **masks)
    wrt = {**params, **({"X": x} if x.requires_grad else {})}
    grads = torch.autograd.grad(E, list(wrt.values()))
    return float(E.detach()), {k: g.numpy() for k, g in zip(wrt, grads)}


def _manual(case: NetworkCase, lib: str) -> tuple[float, dict[str, np.ndarray]]:
    """E and every gradient (and "X") by manual's δ recursion, on NumPy arrays or torch tensors."""
    conv: Callable[[Any], Any] = (lambda a: a) if lib == "numpy" else _as_torch
    params = {k: conv(v) for k, v in case.params.items()}
    masks = {k: conv(m) for k, m in case.masks.items()}
    E, grads, dX = case.net.backward(params, conv(case.X), conv(case.Y), masks=masks)
    want_type = np.ndarray if lib == "numpy" else torch.Tensor
    assert all(isinstance(g, want_type) for g in grads.values()), f"{lib} in, {lib} out"
    if case.X.dtype.kind != "f":
        assert dX is None, "integer inputs (token indices) have no δ"
    out = {k: np.asarray(g) for k, g in grads.items()}
    if dX is not None:
        out["X"] = np.asarray(dX)
    return float(E), out


def _conditioning(case: NetworkCase) -> float:
    """κ = max(1, max |x| / sqrt(var(x) + eps)) over every group a mean-subtracting norm normalizes
    (a layer_norm's rows, a batch_norm's columns). x - μ is rounded to ~eps |x| and then divided by
    sqrt(var + eps): where the group's values nearly agree (a layer_norm over one feature, where
    x - μ is 0 exactly), that rounding grows by |x| / sqrt(eps_norm), up to ~300 |x|, in x̂ and the
    gradients built from it. Elsewhere κ <= sqrt(D) (<= 3 here)."""
    fwd = case.net.forward(case.params, case.X, masks=case.masks)
    kappa = 1.0
    for path, node in case.net.nodes():
        axis = {"layer_norm": -1, "batch_norm": 0}.get(node.name)
        if axis is not None:
            x = np.asarray(fwd.inputs[path])
            ratio = np.max(np.abs(x), axis=axis) / np.sqrt(np.var(x, axis=axis) + node.constants["eps"])
            kappa = max(kappa, float(np.max(ratio)))
    return kappa


def _mismatches(case: NetworkCase, lib: str) -> list[str]:
    """One line per array (and the objective) beyond test 1's tolerance; empty when all agree."""
    E_ref, ref = _autograd(case)
    E, got = _manual(case, lib)
    assert list(got) == list(ref), f"names: manual {list(got)}, torch {list(ref)}"
    scale = max(float(np.max(np.abs(g), initial=0.0)) for g in ref.values())
    tol = GRAD_FACTOR * EPS * _conditioning(case) * scale
    bad = []
    if abs(E - E_ref) > GRAD_FACTOR * EPS * abs(E_ref):
        bad.append(f"objective: manual {E!r}, torch {E_ref!r} (up to {GRAD_FACTOR * EPS * abs(E_ref):.2e})")
    for k, want in ref.items():
        assert got[k].shape == want.shape, f"{k}: shape {got[k].shape}, torch {want.shape}"
        diff = np.abs(got[k] - want)
        worst = float(np.max(diff, initial=0.0))
        if not worst <= tol:  # NaN fails too
            at = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.size else ()
            where = case.net.where(k) if k != "X" else "the input"
            bad.append(f"{k} ({where}): max abs diff {worst:.3e} at {at}, {worst / tol:.1f}x the tolerance {tol:.2e}")
    return bad


def _check_against_autograd(case: NetworkCase, lib: str) -> None:
    __tracebackhide__ = True
    bad = _mismatches(case, lib)
    if bad:
        raise AssertionError(f"{case!r} ({lib}; {case.rebuild()}):\n  " + "\n  ".join(bad))


# -- 1. gradients against autograd of torch's modules -------------------------------------------


@pytest.mark.parametrize("lib", ["numpy", "torch"])
@pytest.mark.parametrize("family", FAMILIES)
def test_network_matches_torch_autograd(family, lib):
    @settings(max_examples=40, deadline=None)
    @given(network_cases((family,), np.dtype("float64")))
    def check(case: NetworkCase) -> None:
        _check_against_autograd(case, lib)

    check()


# -- 2. from_spec is the slides' network, bit for bit ---------------------------------------------

PAIRS = [
    pytest.param("sigmoid", "bce", id="sigmoid+bce"),
    pytest.param("softmax", "ce", id="softmax+ce"),
    pytest.param("identity", "squared", id="identity+squared"),
    pytest.param("tanh", "squared", id="tanh+squared-noncanonical"),
    pytest.param("sigmoid", "ce", id="sigmoid+ce-noncanonical"),
]


@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("output, loss", PAIRS)
def test_from_spec_is_bit_identical_to_the_slides_code(output, loss, bias):
    seen = set()

    @settings(max_examples=16, deadline=None)
    @given(cases(depths=(1, 3), widths=(1, 5), batch=(1, 5), losses=[loss], output_activations=[output], bias=bias))
    def check(case: Any) -> None:
        spec = case.spec
        assert spec.activations[-1].name == output and spec.loss.name == loss and spec.bias is bias
        seen.add(spec.reduction)
        net = Network.from_spec(spec)
        assert net.reduction == spec.reduction
        for conv in (lambda a: a, _as_torch):
            params = case.params.map(conv)
            X, Y = conv(case.X), conv(case.Y)
            named = Network.params_from_spec(params)
            assert list(named) == list(net.parameters())
            E, G = manual.objective(spec, params, X, Y), manual.gradients(spec, params, X, Y)
            E_net, G_net = net.objective(named, X, Y), net.gradients(named, X, Y)
            assert np.array_equal(np.asarray(E), np.asarray(E_net)), f"{spec}: E {E} vs {E_net}"
            for l, W in enumerate(G.weights):
                assert np.array_equal(np.asarray(W), np.asarray(G_net[f"{2 * l}.weight"])), f"{spec}: W{l + 1}"
                if G.biases is not None:
                    assert np.array_equal(np.asarray(G.biases[l]), np.asarray(G_net[f"{2 * l}.bias"])), f"b{l + 1}"

    check()
    assert seen == {"sum", "mean"}, f"both reductions drawn, got {seen}"


# -- 3. NetworkTrainer follows torch.optim on the twin module ------------------------------------


def _gpt() -> tuple[Network, tuple[int, ...]]:
    V, D = 7, 4
    return Network(
        [
            embedding(V, D),
            Residual([layer_norm(D), self_attention(D, 2)]),
            Residual([layer_norm(D), linear(D, 8), "gelu", dropout(0.25), linear(8, D)]),
            layer_norm(D),
            linear(D, V),
        ],
        "cross_entropy",
    ), (3, 5)


def _cnn() -> tuple[Network, tuple[int, ...]]:
    layers = [conv2d(2, 3, 3, padding=1), "relu", max_pool2d(2), conv2d(3, 4, 2), "tanh", "flatten"]
    layers += [dropout(0.5), linear(4 * 2 * 2, 3)]
    return Network(layers, "cross_entropy", reduction="sum"), (4, 2, 6, 6)


OPTIMIZERS = {
    "sgd": ("sgd", dict(lr=0.1), torch.optim.SGD),
    "sgd-nesterov": ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True), torch.optim.SGD),
    "sgd-weight-decay": ("sgd", dict(lr=0.1, weight_decay=0.05), torch.optim.SGD),
    "sgd-dampening": ("sgd", dict(lr=0.1, momentum=0.9, dampening=0.5), torch.optim.SGD),
    "adam-weight-decay": ("adam", dict(lr=0.01, weight_decay=0.05), torch.optim.Adam),
    "adamw-default": ("adamw", dict(lr=0.01), torch.optim.AdamW),  # both sides' default weight_decay=0.01
}
STEPS = 5


def _amplification(name: str, options: Mapping[str, Any]) -> float:
    """How much one step's parameter change can grow an error in the gradient, per unit of lr.
    SGD: the momentum buffer sums past gradients with weights (1 - τ) μ^k <= 1/(1 - μ), Nesterov adds
    μ times the buffer again: (1 + μ)/(1 - μ). Adam: the step is lr * m̂/(sqrt(v̂) + ε), whose slope in
    g is at most 1/ε (at g = 0: a gradient that is rounding noise on one side moves by noise / ε)."""
    if name == "sgd":
        mu = options.get("momentum", 0.0)
        return (1 + mu) / (1 - mu)
    return 1 / options.get("eps", 1e-8)


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("build", [_gpt, _cnn], ids=["gpt", "cnn"])
def test_trainer_follows_torch_optim(build, opt):
    name, options, torch_optimizer = OPTIMIZERS[opt]
    net, shape = build()
    case = network_case(net, shape, seed=3)
    trainer = NetworkTrainer(net, case.params, optimizer=name, **options)
    twin = module(net)
    load(net, twin, case.params)
    optimizer = torch_optimizer(twin.parameters(), **options)
    X, Y = torch.from_numpy(case.X), torch.from_numpy(case.Y)
    rng = np.random.default_rng(0)
    # The two trajectories' parameters differ after step s by at most e_s, where
    #   e_s = 2 e_{s-1} + lr * amplification * gtol_s + 4 eps |P|max
    # gtol_s = test 1's gradient tolerance at step s (the two backwards at the same parameters);
    # 4 eps |P|: the few roundings of one update (decay, the buffer, the subtraction), done in another
    # order by torch's fused kernels; 2 e_{s-1}: the last error carried through the gradient, stable
    # while lr * (the Hessian's norm) <= 1 at these small rates (the loss decreases on both sides).
    # The objective before step s: within test 1's GRAD_FACTOR eps |E| plus Σ|g| e_{s-1}.
    err_bound = 0.0
    for step in range(STEPS):
        masks = {path: rng.random(tuple(m.shape)) >= 0.3 for path, m in case.masks.items()}
        E = float(trainer.step(case.X, case.Y, masks=masks))
        for path, m in masks.items():
            twin.get_submodule(path).mask = torch.from_numpy(m)  # the GivenDropout's buffer
        optimizer.zero_grad()
        out = twin(X)
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), Y.reshape(-1), reduction=net.reduction)
        loss.backward()
        loss_value = float(loss.detach())
        grads = [p.grad for p in twin.parameters() if p.grad is not None]
        gscale = max(float(g.abs().max()) for g in grads)
        gsum = sum(float(g.abs().sum()) for g in grads)
        E_tol = GRAD_FACTOR * EPS * abs(loss_value) + gsum * err_bound
        assert abs(E - loss_value) <= E_tol, f"step {step + 1}: E {E!r} vs torch {loss_value!r} (up to {E_tol:.2e})"
        optimizer.step()
        P_scale = max(float(p.detach().abs().max()) for p in twin.parameters())
        err_bound = 2 * err_bound + options["lr"] * _amplification(name, options) * GRAD_FACTOR * EPS * gscale
        err_bound += 4 * EPS * P_scale
        theirs = params_of(net, twin)
        for k, P in trainer.params.items():
            diff = float(np.max(np.abs(P - theirs[k].detach().numpy())))
            assert diff <= err_bound, f"step {step + 1}, {k} ({net.where(k)}): {diff:.3e} > {err_bound:.3e}"


# -- 4. validation at the public boundary ---------------------------------------------------------


def _small() -> tuple[Network, dict[str, np.ndarray], np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    net = Network([linear(2, 3), "tanh", dropout(0.5), linear(3, 2)], "cross_entropy")
    params = net.init(np.random.default_rng(0))
    return net, params, np.ones((4, 2)), np.zeros(4, dtype=np.int64), {"2": np.ones((4, 3), dtype=bool)}


NET, PARAMS, X4, Y4, MASKS = _small()

BAD_CALLS = [
    pytest.param(
        lambda: NET.check_params({**PARAMS, "9.weight": PARAMS["0.weight"]}),
        ValueError,
        r"params: missing \[\], unknown \['9.weight'\]",
        id="params-unknown-name",
    ),
    pytest.param(
        lambda: NET.check_params({k: v for k, v in PARAMS.items() if k != "0.bias"}),
        ValueError,
        r"params: missing \['0.bias'\]",
        id="params-missing-name",
    ),
    pytest.param(
        lambda: NET.objective({**PARAMS, "0.weight": np.ones((3, 2))}, X4, Y4, masks=MASKS),
        ValueError,
        r"params\['0.weight'\] must have shape \(2, 3\), got \(3, 2\)",
        id="params-wrong-shape",
    ),
    pytest.param(
        lambda: NET.check_params([1, 2]),  # type: ignore[arg-type]
        TypeError,
        r"params must be a dict",
        id="params-not-a-dict",
    ),
    pytest.param(
        lambda: NET.gradients(PARAMS, X4, Y4, masks={}),
        ValueError,
        r"masks has no mask for the dropout at layers path '2'",
        id="missing-dropout-mask",
    ),
    pytest.param(lambda: NET.forward(PARAMS, X4), ValueError, r"path '2' needs masks= or rng=", id="no-mask-no-rng"),
    pytest.param(
        lambda: NET.gradients(PARAMS, X4, Y4, masks={"2": np.ones((4, 1), dtype=bool)}),
        ValueError,
        r"mask must have x's shape \(4, 3\), got shape \(4, 1\)",
        id="mask-wrong-shape",
    ),
    pytest.param(
        lambda: Network([linear(2, 3)], reduction="avg"),
        ValueError,
        r"reduction must be 'mean' or 'sum', got 'avg'",
        id="bad-reduction",
    ),
    pytest.param(
        lambda: Network([linear(2, 3)], "nll"), ValueError, r"loss must be 'cross_entropy' .* got 'nll'", id="bad-loss"
    ),
    pytest.param(
        lambda: NET.objective(PARAMS, X4, Y4.astype(np.float64), masks=MASKS),
        ValueError,
        r"cross_entropy: Y must be integer class indices of shape \(4,\) .* got float64",
        id="ce-targets-float",
    ),
    pytest.param(
        lambda: NET.gradients(PARAMS, X4, np.zeros((4, 1), dtype=np.int64), masks=MASKS),
        ValueError,
        r"cross_entropy: Y must be integer class indices of shape \(4,\) .* of shape \(4, 1\)",
        id="ce-targets-shape",
    ),
    pytest.param(lambda: linear(0, 3), ValueError, r"linear: I must be an int >= 1, got 0", id="linear-0"),
    pytest.param(lambda: self_attention(5, 2), ValueError, r"heads=2 must divide D=5", id="attention-heads"),
    pytest.param(lambda: dropout(1.0), ValueError, r"dropout: p must be a number in \[0, 1\), got 1.0", id="dropout-1"),
    pytest.param(lambda: Residual([]), ValueError, r"Residual\(body\): body is empty", id="residual-empty"),
    pytest.param(
        lambda: Network([linear(2, 3), "relux"]),
        TypeError,
        r"layers\[1\] must be .* an activation's name \(identity, .*\) or 'flatten', got 'relux'",
        id="unknown-activation",
    ),
    pytest.param(lambda: Network([]), ValueError, r"layers is empty", id="no-layers"),
    pytest.param(
        lambda: NetworkTrainer(NET, PARAMS, lr=0.1, optimizer="rmsprop"),
        ValueError,
        r"optimizer must be one of \('sgd', 'adam', 'adamw'\), got 'rmsprop'",
        id="trainer-rmsprop",
    ),
    pytest.param(
        lambda: NetworkTrainer(NET, PARAMS, lr=0.1, optimizer="sgd", momentun=0.9),
        TypeError,
        r"unknown option 'momentun' \(did you mean 'momentum'\?\); accepted: lr, momentum",
        id="trainer-unknown-option",
    ),
    pytest.param(
        lambda: NetworkTrainer(NET, PARAMS, lr=0.1, optimizer="adamw", decoupled=False),
        TypeError,
        r"decoupled is set by the optimizer's name",
        id="trainer-decoupled",
    ),
]


@pytest.mark.parametrize("call, error, message", BAD_CALLS)
def test_bad_calls_name_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


# -- 5. test 1's tolerance can fail ---------------------------------------------------------------


@pytest.mark.parametrize(
    "build, seed",
    [
        (_gpt, 0),
        (_gpt, 1),
        (lambda: (Network([linear(3, 4), Residual([linear(4, 4), "tanh"]), linear(4, 2)]), (5, 3)), 0),
    ],
    ids=["gpt-0", "gpt-1", "mlp-residual"],
)
def test_dropping_the_residual_skip_fails_test_1(build, seed, monkeypatch):
    net, shape = build()
    case = network_case(net, shape, seed=seed)
    _check_against_autograd(case, "numpy")  # the right backward passes
    monkeypatch.setattr(manual.network.residual.Residual, "join", lambda self, past, through: through)
    bad = _mismatches(case, "numpy")
    # the skip's δ is of the gradients' own size, so the wrong backward misses by ~1e12x the tolerance
    assert any("x the tolerance" in line for line in bad), f"the wrong join went unnoticed on {case!r}"
    with pytest.raises(AssertionError, match="the tolerance"):
        _check_against_autograd(case, "numpy")
