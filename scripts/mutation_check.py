"""Mutation check: each mutant breaks one thing on purpose, runs the test that must catch it, and
restores the file. Every mutant must be KILLED (its test red); a SURVIVED line names a test that
cannot see what it claims to check, or a guard that is redundant.

Run it in a copy of the tree, so that no mutant is ever seen by the working tree; the tests run with
the copy first on ``PYTHONPATH`` (set here too), so that the editable install does not import the
original, in the tests' own subprocesses either:

    cp -r . /tmp/mutants && cd /tmp/mutants && PYTHONPATH=$PWD python scripts/mutation_check.py [M1 M7 ...]
"""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
# (name, file, text, replacement, tests that must go red)
MUTANTS = [
    (
        "M1 objective mean / (N J)",
        "manual/objective.py",
        "return total / X.shape[0] if spec.reduction",
        "return total / (X.shape[0] * Y.shape[1]) if spec.reduction",
        "tests/test_crosscheck.py::test_objective_agrees_with_torchs_losses",
    ),
    (
        "M2 objective mean dropped",
        "manual/objective.py",
        'return total / X.shape[0] if spec.reduction == "mean" else total',
        "return total",
        "tests/test_crosscheck.py::test_objective_agrees_with_torchs_losses",
    ),
    (
        "M3 float64 tolerance with float32 eps",
        "torch_ref/numerics/tolerance.py",
        "    eps, tiny = float(np.finfo(dtype).eps), float(np.finfo(dtype).tiny)",
        "    eps, tiny = float(np.finfo(np.float32).eps), float(np.finfo(dtype).tiny)",
        "tests/test_tolerance_model.py::test_float64_bound_rejects_a_gradient_rounded_to_float32",
    ),
    (
        "M4 compare: NaN passes against a number",
        "torch_ref/numerics/compare.py",
        "    bad = ~np.isfinite(a) | ~np.isfinite(e)",
        "    bad = np.isinf(a) | ~np.isfinite(e)",
        "tests/test_tolerance_model.py::test_a_non_finite_value_never_agrees",
    ),
    (
        "M5 compare: NaN on both sides agrees",
        "torch_ref/numerics/compare.py",
        "    bad = ~np.isfinite(a) | ~np.isfinite(e)",
        "    bad = (~np.isfinite(a) | ~np.isfinite(e)) & ~(np.isnan(a) & np.isnan(e))",
        "tests/test_tolerance_model.py::test_a_non_finite_value_never_agrees",
    ),
    (
        "M6 Trainer keeps the graph",
        "manual/trainer.py",
        "    return xp.asarray(_plain(a), copy=True)",
        "    return xp.asarray(a, copy=True)",
        "tests/test_trainer.py::test_trainer_never_records_an_autograd_graph",
    ),
    (
        "M7 Trainer steps the caller's arrays",
        "manual/trainer.py",
        "        self.weights = [_own_copy(xp, W) for W in params.weights]",
        "        self.weights = list(params.weights)",
        "tests/test_trainer.py::test_trainer_step_matches_sgd",
    ),
    (
        "M8 sgd_step takes xi twice",
        "manual/sgd.py",
        "    weights = [W - xi * g for W, g",
        "    weights = [W - 2 * xi * g for W, g",
        "tests/test_explicit_cases.py::test_sgd_step_takes_every_gradient_at_the_old_weights",
    ),
    (
        "M9 benchmark functional step climbs",
        "benchmarks/impls.py",
        "torch._foreach_add_(leaves, grads, alpha=-lr)",
        "torch._foreach_add_(leaves, grads, alpha=lr)",
        "tests/test_benchmark_smoke.py::test_every_implementation_takes_the_sgd_step",
    ),
    (
        "M10 training allowance without its own rounding",
        "torch_ref/frontends/crosscheck.py",
        "    allowed = [a * (1 + (4 * steps + 1) * _EPS64) for a in allowed]",
        "",
        "tests/test_tolerance_model.py::test_training_allowance_holds_where_the_trajectories_diverge",
    ),
    (
        "M11 oracle hands out the case's own arrays",
        "torch_ref/first_order/verdict.py",
        "    return hand_out_params(case.params, arrays, device), _copy(case.X, arrays, device), _copy(case.Y, arrays, device)",
        '    if arrays == "numpy":\n        return case.params, case.X, case.Y\n'
        "    return hand_out_params(case.params, arrays, device), _copy(case.X, arrays, device), _copy(case.Y, arrays, device)",
        "tests/test_verdicts.py::test_in_place_update_rule_is_checked_against_the_weights_before_the_call tests/test_verdicts.py::test_case_arrays_are_never_handed_out",
    ),
    (
        "M12 no exact sums (every kink ambiguous)",
        "torch_ref/numerics/exact.py",
        "    return representable & (e_u @ absW == 0)",
        "    return representable & False",
        "tests/test_verdicts.py::test_exact_zero_in_a_deeper_relu_layer_is_checked_exactly tests/test_verdicts.py::test_relu_kink_mistake_in_deeper_layers_is_caught",
    ),
    (
        "M13 kinks placed in layer 1 only",
        "torch_ref/strategies.py",
        "        if 0.0 in entry.kinks:\n            W[:, 0] = 0",
        "        if 0.0 in entry.kinks and l == 0:\n            W[:, 0] = 0",
        "tests/test_verdicts.py::test_relu_kink_mistake_in_deeper_layers_is_caught "
        "tests/test_verdicts.py::test_exact_zero_in_a_deeper_relu_layer_is_checked_exactly",
    ),
    (
        "M14 precision without finite differences",
        "torch_ref/first_order/verdict.py",
        "    separated = [(e, d, r) for e, d, r in estimates if e.supports(r) and not e.supports(d)]",
        "    separated = []",
        "tests/test_verdicts.py::test_within_band_but_separated_by_finite_differences_is_a_mismatch",
    ),
    (
        "M15 unstable without checking unsaturated points",
        "torch_ref/first_order/unstable.py",
        "    if not check.passed:\n",
        "    if False:\n",
        "tests/test_verdicts.py::test_wrong_math_at_saturation_is_still_a_mismatch",
    ),
    (
        "M16 a variant named without differing from autograd",
        "torch_ref/first_order/diagnose.py",
        "        if not all(_within(g, e, room)) and all(_within(a, g, room)):",
        "        if all(_within(a, g, room)):",
        "tests/test_verdicts.py::test_no_W_for_W_transpose_when_every_hidden_width_is_one tests/test_verdicts.py::test_no_transpose_named_for_a_one_by_one_matrix_or_a_float32_result",
    ),
    (
        "M17 wheel lists top-level packages only",
        "pyproject.toml",
        '[tool.setuptools.packages.find]\n# every subpackage (manual.slides, torch_ref.slides) goes into the wheel\ninclude = ["manual*", "torch_ref*"]',
        '[tool.setuptools]\npackages = ["manual", "torch_ref"]',
        "tests/test_packaging.py",
    ),
    (
        "M18 oracle frames shown in pytest",
        "torch_ref/engine/run.py",
        '    or when too little was judged; return what was covered."""\n    __tracebackhide__ = True\n',
        '    or when too little was judged; return what was covered."""\n',
        "tests/test_oracle_calls.py::test_failing_fixture_check_shows_the_report_not_the_oracle",
    ),
    (
        "M19 plugin accepts --oracle-examples=0",
        "torch_ref/pytest_plugin.py",
        "    if examples < 1:",
        "    if examples < -1:",
        "tests/test_oracle_calls.py::test_bad_oracle_options_are_usage_errors_at_start_up",
    ),
    (
        "M20 ce objective as -y log y*",
        "manual/objective.py",
        "    if from_logits is not None:\n        return from_logits(I, Y, xp)",
        "    if False:\n        return from_logits(I, Y, xp)",
        "tests/test_numerics.py",
    ),
    (
        "M21 slide evidence = last failing point",
        "torch_ref/slides/check.py",
        "        if not ok and diff > worst_failing:",
        "        if not ok:",
        "tests/test_slides.py::test_evidence_is_the_worst_failing_point",
    ),
    (
        "M22 grad_fn signature not checked",
        "torch_ref/first_order/kind_entry.py",
        "        check_callable(fn, what, nargs)\n",
        "        pass\n",
        "tests/test_oracle_calls.py::test_bad_grad_fn_is_a_type_error_before_any_draw",
    ),
    (
        "M23 bce floor convention for sigmoid only",
        "torch_ref/numerics/tolerance.py",
        "    if not ref.two_references:\n        return None, None",
        "    if not (ref.two_references and spec.activations[-1] == 'sigmoid'):\n        return None, None",
        "tests/test_verdicts.py::test_exact_bce_derivative_passes_where_torch_floors_softmax_outputs",
    ),
    (
        "M24 ReLU'(0) = 1 in manual",
        "manual/activations.py",
        "    return xp.where(O > 0, xp.ones_like(O), xp.zeros_like(O))",
        "    return xp.where(I >= 0, xp.ones_like(O), xp.zeros_like(O))",
        "tests/test_crosscheck.py::test_gradients_agree",
    ),
    (
        "M25 leaky ReLU' at 0 from the right",
        "manual/activations.py",
        "    return xp.where(I > 0, xp.ones_like(I), xp.full_like(I, _LEAKY_SLOPE))",
        "    return xp.where(I >= 0, xp.ones_like(I), xp.full_like(I, _LEAKY_SLOPE))",
        "tests/test_registry.py",
    ),
    (
        "M26 softplus without torch's threshold",
        "manual/activations.py",
        "_SOFTPLUS_THRESHOLD = 20.0",
        "_SOFTPLUS_THRESHOLD = 40.0",
        "tests/test_registry.py",
    ),
    (
        "M27 a user entry's own findings dropped",
        "torch_ref/first_order/entry_check.py",
        'autograd dL/dy* = {g_ref[k]:.10g}"\n            )\n    return out\n',
        'autograd dL/dy* = {g_ref[k]:.10g}"\n            )\n    return []\n',
        "tests/test_user_entries.py",
    ),
    (
        "M28 a user activation's twin is not its own forward",
        "torch_ref/twins.py",
        "    return ActivationTwin(entry, partial(_user_forward, entry))",
        "    return ActivationTwin(entry, torch.tanh)",
        "tests/test_user_entries.py",
    ),
    (
        "M29 SGD buffer's first step dampened",
        "manual/optim.py",
        "b = self.buffers[key] = G * 1.0",
        "b = self.buffers[key] = G * (1 - self.dampening)",
        "tests/test_training.py::test_manual_sgd_options_follow_torch",
    ),
    (
        "M30 Adam eps before the bias correction",
        "manual/optim.py",
        "        denom /= math.sqrt(1 - beta2**self.t)\n        denom += self.eps",
        "        denom += self.eps\n        denom /= math.sqrt(1 - beta2**self.t)",
        "tests/test_training.py::test_manual_adam_follows_torch",
    ),
    (
        "M31 bound of a product without e_a e_b",
        "torch_ref/numerics/bound.py",
        "np.abs(v) * self.err + self.err * e",
        "np.abs(v) * self.err",
        "tests/test_training.py::test_bound_arithmetic_contains_every_perturbed_result",
    ),
    (
        "M32 coverage cases not filtered by the options",
        "torch_ref/engine/run.py",
        "        if not self.opt.admits(case):  # a coverage case outside the options (a drawn case never is)\n"
        "            return True\n",
        "",
        "tests/test_narrowing.py::test_where_predicate",
    ),
    (
        "M33 per-example gradients with the spec's reduction",
        "manual/per_example.py",
        'summed = Spec(spec.sizes, spec.activations, spec.loss, bias=spec.bias, reduction="sum")',
        "summed = spec",
        "tests/test_other_quantities.py::test_manual_passes",
    ),
    (
        "M34 diverging steps compared",
        "torch_ref/training/trajectory.py",
        "        if not here <= limit:\n            return k, largest, grads, floored\n",
        "        pass\n",
        "tests/test_training.py::test_steps_past_the_dtype_range_are_not_compared",
    ),
    (
        "M35 trajectory rounding of float64 only",
        "torch_ref/training/trajectory.py",
        "unit = float(np.finfo(case.X.dtype).eps) + float(np.finfo(np.float64).eps)",
        "unit = float(np.finfo(np.float64).eps)",
        "tests/test_training.py::test_manual_sgd_options_follow_torch tests/test_training.py::test_manual_adam_follows_torch",
    ),
    (
        "M36 a variant fits without telling itself from torch",
        "torch_ref/training/trajectory.py",
        "        if not _as_step(allowed[k - 1]).allowed[position][index] < apart:\n            continue",
        "        pass",
        "tests/test_training.py::test_a_variant_whose_bound_cannot_tell_it_from_torch_is_not_named",
    ),
    (
        "M37 rounds never reversed",
        "benchmarks/rounds.py",
        "        for name in names if r % 2 == 0 else reversed(names):",
        "        for name in names:",
        "tests/test_benchmark_smoke.py::test_rounds_alternate_their_order_and_ratios_pair_rounds",
    ),
    (
        "M38 peak memory read at the end of the step",
        "benchmarks/memory.py",
        "    return peak\n",
        "    return current\n",
        "tests/test_benchmark_smoke.py::test_peak_bytes_counts_the_temporaries_and_not_what_existed_before",
    ),
    (
        "M39 Trainer divides a mean by N twice",
        "manual/trainer.py",
        "                xi = xi / X.shape[0]  # every delta",
        "                delta /= X.shape[0]; xi = xi / X.shape[0]  # every delta",
        "tests/test_trainer.py::test_trainer_step_matches_sgd",
    ),
    # M40 (a submodule import rebinds a torch_ref function's name) is gone with its target: the package
    # namespace's module type that kept a function's name against a submodule of the same name was
    # removed, no submodule now shares a name with a function, and nothing of that guard remains
    (
        "M41 hvp: the R{u}^T delta term dropped",
        "manual/second_order.py",
        "    HV_W += [RO[l - 1].T @ delta[l] + fwd.u[l].T @ R_delta[l] for l in range(1, spec.depth)]",
        "    HV_W += [fwd.u[l].T @ R_delta[l] for l in range(1, spec.depth)]",
        "tests/test_second_order.py::test_manual_hvp_and_gnvp_agree_with_torch_on_every_built_in",
    ),
    (
        "M42 hvp: the hidden A'' term dropped",
        "manual/second_order.py",
        "R_back * entry.prime(fwd.I[l], fwd.O[l], xp) + back * entry.second(fwd.I[l], fwd.O[l], xp) * RI[l],",
        "R_back * entry.prime(fwd.I[l], fwd.O[l], xp),",
        "tests/test_second_order.py::test_manual_hvp_and_gnvp_agree_with_torch_on_every_built_in",
    ),
    (
        "M43 hvp: the delta V_W^T term dropped",
        "manual/second_order.py",
        "        R_back = R_delta[0] @ params.weights[l + 1].T + delta[l + 1] @ V.weights[l + 1].T",
        "        R_back = R_delta[0] @ params.weights[l + 1].T",
        "tests/test_second_order.py::test_manual_hvp_and_gnvp_agree_with_torch_on_every_built_in",
    ),
    (
        "M44 R-forward: V_b left out",
        "manual/second_order.py",
        "            RI_l = RI_l + V.biases[l]",
        "            RI_l = RI_l",
        "tests/test_second_order.py::test_manual_hvp_and_gnvp_agree_with_torch_on_every_built_in",
    ),
    (
        "M45 R-forward: softmax's Jacobian as its diagonal",
        "manual/second_order.py",
        "            RO_l = entry.pullback(fwd.O[l], fwd.O[l] * RI_l, xp)",
        "            RO_l = fwd.O[l] * (1 - fwd.O[l]) * RI_l",
        "tests/test_second_order.py::test_manual_hvp_and_gnvp_agree_with_torch_on_every_built_in",
    ),
    (
        "M46 gnvp: A' at the output left out",
        "manual/second_order.py",
        "        d = out.prime(fwd.I[-1], O, xp) * HJV",
        "        d = HJV",
        "tests/test_second_order.py::test_manual_hvp_and_gnvp_agree_with_torch_on_every_built_in",
    ),
    (
        "M47 second order: the mean's 1/N left out",
        "manual/second_order.py",
        '    return a / N if spec.reduction == "mean" else a',
        "    return a",
        "tests/test_second_order.py::test_manual_hvp_and_gnvp_agree_with_torch_on_every_built_in",
    ),
    (
        "M48 tanh'' of the wrong sign",
        "manual/activations.py",
        "    return -2 * O * (1 - O * O)  # d/dI (1 - O^2) = -2 O O'",
        "    return 2 * O * (1 - O * O)",
        "tests/test_second_order.py::test_every_built_in_second_derivative_is_autograds",
    ),
    (
        "M49 bce's second derivative without y",
        "manual/losses.py",
        "    return R * (O * O - 2 * Y * O + Y) / (d * d)",
        "    return R * (O * O - 2 * Y * O) / (d * d)",
        "tests/test_second_order.py::test_every_built_in_loss_hessian_is_autograds",
    ),
    (
        "M50 sigmoid + ce: cancelled R-form without y",
        "manual/losses.py",
        "    return Y * RO\n",
        "    return RO\n",
        "tests/test_second_order.py::test_manual_hvp_and_gnvp_agree_with_torch_on_every_built_in",
    ),
    (
        "M51 second-order bound 1e4 times looser",
        "torch_ref/second_order/tolerance.py",
        "    kappa2 = kappa * (2 * spec.depth + 2)",
        "    kappa2 = 1e4 * kappa * (2 * spec.depth + 2)",
        "tests/test_second_order.py::test_the_float64_bound_rejects_a_product_off_by_a_relative_1e_10 tests/test_soundness_pins.py::test_a_wrong_product_confined_to_saturated_rows_fails",
    ),
    (
        "M52 second-order diagnosis: the Gauss-Newton candidate gone",
        "torch_ref/second_order/diagnosis.py",
        '        out.append(("the Gauss-Newton product J^T H_L J V passed off as the Hessian\'s", arrays(gn)))',
        "        pass",
        "tests/test_second_order.py::test_wrong_hessian_products_are_caught_and_diagnosed",
    ),
    (
        "M53 your own entry's derivatives not checked",
        "torch_ref/second_order/diagnosis.py",
        "    entries = _entries(outcome)",
        "    entries = []",
        "tests/test_second_order.py::test_your_own_entries_second_derivatives_are_checked_and_named",
    ),
    (
        "M54 data-parallel mean divided by the shard's own N",
        "manual/data_parallel.py",
        "    count = float(N[0])",
        "    count = float(max(N_k, 1))",
        "tests/test_data_parallel.py::test_shards_summed_by_allreduce_give_the_whole_batch_gradient",
    ),
    (
        "M55 torch_ref.data_parallel.distributed.allreduce sums nothing",
        "torch_ref/data_parallel/distributed.py",
        "        dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group)\n        return t.numpy()",
        "        return t.numpy()",
        "tests/test_data_parallel.py::test_the_reproduce_line_rechecks_the_case",
    ),
    (
        "M56 hvp: the cancelled output form not used",
        "manual/second_order.py",
        "    elif out.name in loss.r_cancelled:",
        "    elif False:",
        "tests/test_second_order.py::test_cancelled_forms_stay_finite_where_the_output_saturates",
    ),
    (
        "M57 gnvp: the cancelled output form not used",
        "manual/second_order.py",
        "    if out.name in spec.loss.gn_cancelled:",
        "    if False:",
        "tests/test_second_order.py::test_cancelled_forms_stay_finite_where_the_output_saturates",
    ),
    (
        "M58 the DDP line says equal whatever DDP gives",
        "torch_ref/data_parallel/diagnosis.py",
        "    same = _within(got, ddp, bounds)",
        "    same = True",
        "tests/test_data_parallel.py::test_data_parallel_mistakes_are_caught_and_diagnosed_and_right_ones_pass",
    ),
    (
        "M59 softmax + bce: 1 - y* by subtraction",
        "manual/losses.py",
        "    return O @ others\n",
        "    return 1 - O\n",
        "tests/test_second_order.py::test_softmax_bce_where_an_output_rounds_to_1",
    ),
    (
        "M60 gradient bound x100",
        "torch_ref/numerics/tolerance.py",
        "    return r.unit * m + r.kappa * r.tiny",
        "    return 100 * r.unit * m + r.kappa * r.tiny",
        "tests/test_soundness_first_order.py::test_gradient_bound_equals_its_formula_and_is_pinned_from_both_sides",
    ),
    (
        "M61 update bound x100",
        "torch_ref/numerics/tolerance.py",
        "        return lr * G + 2 * r.eps * (np.abs(W) + lr * np.abs(g)) + r.tiny",
        "        return 100 * lr * G + 2 * r.eps * (np.abs(W) + lr * np.abs(g)) + r.tiny",
        "tests/test_soundness_first_order.py::test_update_bound_equals_its_formula_and_is_pinned_from_both_sides",
    ),
    (
        "M62 precision band x100",
        "torch_ref/numerics/tolerance.py",
        "    return RTOL[np.dtype(dtype).name] * (s + s.max(initial=0.0))",
        "    return 100 * RTOL[np.dtype(dtype).name] * (s + s.max(initial=0.0))",
        "tests/test_soundness_first_order.py::test_precision_band_is_pinned_from_both_sides",
    ),
    (
        "M63 bce floor as a symmetric band",
        "torch_ref/numerics/tolerance.py",
        # the band added where _exact_term's result is taken: _exact_term has no rounding unit to divide by
        "    M_exact, floored = _exact_term(spec, twin, ref, fwd, scale, M_L)\n",
        "    M_exact, floored = _exact_term(spec, twin, ref, fwd, scale, M_L)\n"
        "    M_exact = None if M_exact is None else M_exact + np.where(\n"
        "        ref.floored.any(axis=-1, keepdims=True), np.abs(ref.exact_delta - ref.delta[-1]) / r.unit, 0.0\n"
        "    )\n",
        "tests/test_soundness_first_order.py::test_floor_accepts_nothing_around_or_between_the_two_references",
    ),
    (
        "M64 undetermined rows: any value up to the floor's bound",
        "torch_ref/numerics/tolerance.py",
        "    return np.where(rows, _stable_term(spec, twin, ref, fwd, scale), M_L), text",
        "    return np.where(rows, _stable_term(spec, twin, ref, fwd, scale)"
        " + (np.abs(ref.O[-1]) + np.abs(ref.Y)) / twin.floor * ref.O[-1], M_L), text",
        "tests/test_soundness_first_order.py::test_float32_saturated_row_rejects_the_wrong_gradients_it_once_accepted",
    ),
    (
        "M65 unstable where any failing row saturates",
        "torch_ref/first_order/unstable.py",
        "    if not all(saturated[n] for n in failing):",
        "    if not any(saturated[n] for n in failing):",
        "tests/test_soundness_first_order.py::test_unstable_needs_every_failing_row_saturated",
    ),
    (
        "M66 unstable without evidence",
        "torch_ref/first_order/unstable.py",
        "    if verdict.comparison is not None and any(row.nonfinite for row in verdict.comparison.rows):",
        "    if True:",
        "tests/test_soundness_first_order.py::test_finite_wrong_value_at_a_saturated_row_is_a_mismatch_not_unstable",
    ),
    (
        "M67 logits regime never drawn",
        "torch_ref/strategies.py",
        "            return LOGIT_TARGETS[k - 3 * n], 0.0\n",
        "            return 0.0, 0.0\n",
        "tests/test_soundness_first_order.py::test_a_wrong_stable_branch_past_the_floor_is_caught",
    ),
    (
        "M68 an infinite allowance accepts",
        "torch_ref/numerics/compare.py",
        "    unbounded = ~np.isfinite(tol)\n",
        "    unbounded = np.zeros(tol.shape, dtype=bool)\n",
        "tests/test_soundness_training.py::test_an_entry_with_no_finite_bound_is_not_judged_and_never_passes tests/test_tolerance_model.py::test_an_infinite_allowance_is_never_a_pass",
    ),
    (
        "M69 a comparison of nothing passes",
        "torch_ref/numerics/compare.py",
        "        return bool(self.rows) and all(row.ok for row in self.rows)",
        "        return all(row.ok for row in self.rows)",
        "tests/test_tolerance_model.py::test_a_comparison_of_nothing_never_passes",
    ),
    (
        "M70 trajectory rounding term x100",
        "torch_ref/training/trajectory.py",
        "    unit = float(np.finfo(case.X.dtype).eps) + float(np.finfo(np.float64).eps)",
        "    unit = 100 * (float(np.finfo(case.X.dtype).eps) + float(np.finfo(np.float64).eps))",
        "tests/test_soundness_training.py::test_the_rounding_term_is_pinned_from_both_sides",
    ),
    (
        "M71 trajectory gradient tolerance x100",
        "torch_ref/training/trajectory.py",
        "        G = [Bound(g, e + t, unit) for g, e, (_, t) in zip(gs, measured, T.arrays())]",
        "        G = [Bound(g, e + 100 * t, unit) for g, e, (_, t) in zip(gs, measured, T.arrays())]",
        "tests/test_soundness_training.py::test_the_gradient_tolerance_term_is_pinned_from_both_sides",
    ),
    (
        "M72 last step never compared",
        "torch_ref/training/trajectory.py",
        "    for k in range(len(data)):  # every step, the last included",
        "    for k in range(len(data) - 1):  # every step, the last included",
        "tests/test_soundness_training.py::test_the_last_step_is_compared",
    ),
    (
        "M73 the same batch at every step",
        "torch_ref/training/trajectory.py",
        "        out.append(data_for(case.spec, case.X.shape[0], rng, grid=case.grid, dtype=case.X.dtype, targets=case.targets))",
        "        out.append((case.X, case.Y))",
        "tests/test_soundness_training.py::test_a_trainer_that_reuses_the_first_batch_fails",
    ),
    (
        "M74 Adam quotient without its range",
        "torch_ref/training/rules.py",
        "    return q.within(R * (1 + (8 * n + 8) * q.unit))",
        "    return q",
        "tests/test_soundness_training.py::test_adam_moving_entries_with_a_tiny_gradient_by_5_fails",
    ),
    (
        "M75 an unbounded step entry counted as judged",
        "torch_ref/training/step_compare.py",
        "        missing = int(np.size(B) - np.count_nonzero(judged))",
        "        missing = 0",
        "tests/test_soundness_training.py::test_an_entry_with_no_finite_bound_is_not_judged_and_never_passes",
    ),
    (
        "M76 oracle passes a run where most are not judged",
        "torch_ref/engine/run.py",
        "    if judged == 0 or summary.not_judged > judged:",
        "    if judged == 0:",
        "tests/test_soundness_training.py::test_an_oracle_run_where_most_cases_are_not_judged_fails",
    ),
    (
        "M77 trajectory rounding of float64 for float32 runs",
        "torch_ref/training/trajectory.py",
        "    unit = float(np.finfo(case.X.dtype).eps) + float(np.finfo(np.float64).eps)",
        "    unit = 2 * float(np.finfo(np.float64).eps)",
        "tests/test_soundness_training.py::test_the_rounding_term_is_pinned_from_both_sides",
    ),
    (
        "M78 user-entry check x100",
        "torch_ref/first_order/entry_check.py",
        "_C = 64 * float(np.finfo(np.float64).eps)",
        "_C = 6400 * float(np.finfo(np.float64).eps)",
        "tests/test_soundness_user.py::test_a_derivative_a_few_times_beyond_the_entry_bound_is_named tests/test_soundness_user.py::test_the_loss_gradient_bound_is_pinned_from_both_sides",
    ),
    (
        "M79 user loss-gradient check x100",
        "torch_ref/first_order/entry_check.py",
        "bad = ~(np.abs(g - g_ref) <= _C * G)",
        "bad = ~(np.abs(g - g_ref) <= 100 * _C * G)",
        "tests/test_soundness_user.py::test_the_loss_gradient_bound_is_pinned_from_both_sides",
    ),
    (
        "M80 a custom autograd.Function differentiated through",
        "torch_ref/twin/user_twin.py",
        '        _refuse_custom("Activation", entry.name, "forward(I, xp)", _custom_functions(O, I))',
        "        pass",
        "tests/test_soundness_user.py::test_an_activation_through_a_custom_autograd_function_is_refused_not_checked_against_itself",
    ),
    (
        "M81 a coupling forward taken as elementwise",
        "torch_ref/twins.py",
        "    probe_elementwise(entry)\n",
        "",
        "tests/test_soundness_user.py::test_the_refusals_guard_every_path_to_the_reference",
    ),
    (
        "M82 any ratio named as a factor",
        "torch_ref/first_order/diagnose.py",
        "_SMALL = 4\n",
        "_SMALL = 64\n",
        "tests/test_soundness_user.py::test_a_ratio_with_large_terms_is_not_named",
    ),
    (
        "M83 data-parallel float64 bound for float32 runs",
        "torch_ref/data_parallel/check.py",
        "    tol = tolerance(case.spec, case.params, case.X, case.Y, dtype=case.X.dtype, reference_pass=whole)",
        "    tol = tolerance(case.spec, case.params, case.X, case.Y, dtype=np.float64, reference_pass=whole)",
        "tests/test_soundness_pins.py::test_the_data_parallel_bound_is_the_runs_dtype_and_pinned_from_both_sides",
    ),
    (
        "M84 deltas bound x100",
        "torch_ref/numerics/tolerance.py",
        "        return list(r_values), list(t.deltas)",
        "        return list(r_values), [100 * d for d in t.deltas]",
        "tests/test_soundness_pins.py::test_deltas_input_and_per_example_bounds_are_pinned_from_both_sides",
    ),
    (
        "M85 input-gradient bound x100",
        "torch_ref/numerics/tolerance.py",
        "        return [r_values], [t.input]",
        "        return [r_values], [100 * t.input]",
        "tests/test_soundness_pins.py::test_deltas_input_and_per_example_bounds_are_pinned_from_both_sides",
    ),
    (
        "M86 per-example bound of float64",
        "torch_ref/first_order/quantities.py",
        "    allowed = _per_example_tolerance(case, case.X.dtype)",
        '    allowed = _per_example_tolerance(case, np.dtype("float64"))',
        "tests/test_soundness_pins.py::test_deltas_input_and_per_example_bounds_are_pinned_from_both_sides",
    ),
    (
        "M87 second-order errors weighted as one",
        "torch_ref/second_order/tolerance.py",
        "            for t in (0.0, unit)\n",
        "            for t in (0.0, 1.0)\n",
        "tests/test_soundness_pins.py::test_a_wrong_product_confined_to_saturated_rows_fails",
    ),
    (
        "M88 second-order bound x100",
        "torch_ref/second_order/tolerance.py",
        "        return [np.fmin(a, both * r + kappa2 * tiny) for a, r in zip(wide, ball)]",
        "        return [np.fmin(100 * a, 100 * both * r + kappa2 * tiny) for a, r in zip(wide, ball)]",
        "tests/test_soundness_pins.py::test_the_second_order_bound_is_pinned_from_both_sides",
    ),
    (
        "M89 second order passes on the few judged",
        "torch_ref/engine/run.py",  # the engine's guard, shared by every kind (M76, M90)
        "    if judged == 0 or summary.not_judged > judged:",
        "    if judged == 0:",
        "tests/test_second_order.py::test_a_run_that_judges_fewer_cases_than_it_leaves_fails_not_judged",
    ),
    (
        "M90 data-parallel passes on the few judged",
        "torch_ref/engine/run.py",  # the engine's guard, shared by every kind (M76, M89)
        "    if judged == 0 or summary.not_judged > judged:",
        "    if False:",
        "tests/test_soundness_pins.py::test_a_data_parallel_run_that_judges_too_little_fails",
    ),
    (
        "M91 crosscheck training never follows the exact trajectory",
        "torch_ref/frontends/crosscheck.py",
        "    if loss_twin(spec.loss).floor is not None:",
        "    if False:",
        "tests/test_crosscheck.py::test_training_past_the_floor_may_follow_the_exact_trajectory",
    ),
    (
        "M92 a loss of digits spread over rows called a mismatch",
        "torch_ref/first_order/unstable.py",
        "    failing, whole = _failing(per_example, saturated)\n",
        '    failing, whole = _failing(per_example, saturated)\n    if whole:\n        return "mismatch", ()\n',
        "tests/test_soundness_first_order.py::test_a_loss_of_digits_spread_over_several_saturated_rows_is_unstable_not_a_mismatch",
    ),
    (
        "M93 second order: running error bound skipped",
        "torch_ref/second_order/tolerance.py",
        "        if ball is None:\n            return wide",
        "        if True:\n            return wide",
        "tests/test_second_order.py::test_the_second_order_bound_is_a_few_percent_of_a_saturated_product",
    ),
    (
        "M94 second order: softmax carried error uncancelled",
        "torch_ref/second_order/tolerance.py",
        "    return O * (s_I * (O @ others) + (O * s_I) @ others) + O",
        "    return O * (s_I + np.max(s_I, axis=-1, keepdims=True)) + O",
        "tests/test_second_order.py::test_the_second_order_bound_is_a_few_percent_of_a_saturated_product",
    ),
    (
        "M95 second order: cancelled pairs left to the absolute-value model",
        "torch_ref/second_order/running_error.py",
        "    if form is not None and p.Y is None:\n        return None",
        "    if form is not None:\n        return None",
        "tests/test_second_order.py::test_a_cancelled_forms_saturated_rows_flipped_are_caught",
    ),
    (
        "M96 second order: affine differences do not cancel",
        "torch_ref/second_order/affine.py",
        "return self._new(v, a.C + sign * b.C, r, a, b)",
        "return self._new(v, a.C + b.C, r, a, b)",
        "tests/test_second_order.py::test_a_cancelled_forms_saturated_rows_flipped_are_caught",
    ),
    (
        "M97 second order: cancelled form's radius x100",
        "torch_ref/second_order/affine.py",
        "        return _Ball(self.v, self.e)",
        "        return _Ball(self.v, 100 * self.e)",
        "tests/test_second_order.py::test_the_cancelled_forms_bound_is_pinned",
    ),
    (
        "M98 second order: sums of affine forms do not cancel",
        "torch_ref/second_order/affine.py",
        "            C = np.sum(a.C, axis=axes, keepdims=keepdims)",
        "            C = np.sum(np.abs(a.C), axis=axes, keepdims=keepdims)",
        "tests/test_second_order.py::test_the_cancelled_forms_bound_is_pinned",
    ),
    (
        "M99 hand-written right HV with floored deltas",
        "tests/so_mistakes.py",
        "    delta = [d * scale for d in _exact_deltas(summed, params, forward(summed, params, X), Y, xp)]",
        "    delta = [d * scale for d in manual.deltas(summed, params, X, Y)]",
        "tests/test_second_order.py::test_the_hand_written_right_one_passes_and_the_reproduce_line_rechecks",
    ),
    (
        "M100 the backward R-pass on reference values without its A'' term",
        "torch_ref/second_order/r_pass.py",
        "            term = term + back * v.d2A[l] * RI[l]",
        "            term = term",
        "tests/test_second_order.py::test_the_references_agree_with_each_other",
    ),
]
only = sys.argv[1:]
survived = 0
for name, path, old, new, tests in MUTANTS:
    if only and not any(name.startswith(o + " ") for o in only):
        continue
    f = ROOT / path
    src = f.read_text()
    if src.count(old) != 1:  # a mutant that no longer applies checks nothing: a failure of the run
        print(f"{name}: BROKEN (its text occurs {src.count(old)} times in {path})", flush=True)
        survived += 1
        continue
    f.write_text(src.replace(old, new))
    try:
        r = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:warnings", "-p", "no:cacheprovider", *tests.split()],
            cwd=ROOT,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=900,
        )
        last = ([l for l in (r.stdout + r.stderr).splitlines() if l.strip()] or ["no output"])[-1]
        # killed only by a failing test (exit code 1): a test that is not found or does not import
        # (2, 4, 5) sees nothing of the mutant
        verdict = {0: "SURVIVED", 1: "KILLED"}.get(r.returncode, f"BROKEN (pytest exit code {r.returncode})")
        survived += r.returncode != 1
        print(f"{name}: {verdict} ({last})", flush=True)
    finally:
        f.write_text(src)
print(f"{survived} survived or broken")
sys.exit(1 if survived else 0)
