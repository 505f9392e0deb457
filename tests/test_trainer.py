"""The batched trainer: independence of runs, sampling, gradients, optimiser, errors."""

import math

import helpers
import pytest
import torch

from curriculum_rl.controllers import make_controller
from curriculum_rl.controllers.base import RunContext
from curriculum_rl.suites import SyntheticSetting, SyntheticSuite, TabularSuite, resolve_suite
from curriculum_rl.trainer import BatchedMultitaskTrainer, TrainerConfig
from curriculum_rl.trainer.model import BatchedLinear, seeded_generator
from curriculum_rl.trainer.objective import EPS, loss_normaliser
from curriculum_rl.trainer.optim import BatchedOptimizer, fused_adam_supported


def small_suite(k_low=3, k_high=3, **knobs) -> SyntheticSuite:
    setting = SyntheticSetting("test", num_tasks=(k_low, k_high), **knobs)
    return SyntheticSuite(
        name="tiny", settings=(setting,), n_train=128, n_val=64, n_test=64, hidden=(16,)
    )


CONFIG = TrainerConfig(batch_size=32, proj_dim=16, val_probe=16, device="cpu")
CPU = TrainerConfig(device="cpu")


def train_runs(instances, seeds, steps=30):
    trainer = BatchedMultitaskTrainer(instances, seeds, CONFIG, max_tasks=4)
    trainer.train(steps)
    return trainer.measure(), trainer.evaluate("test")


def test_batched_runs_equal_separate_runs():
    suite = small_suite(2, 4)
    instances = [suite.sample(s) for s in (1, 2, 3)]
    batched, batched_eval = train_runs(instances, [10, 20, 30])
    for run, (inst, seed) in enumerate(zip(instances, [10, 20, 30], strict=True)):
        single, single_eval = train_runs([inst], [seed])
        torch.testing.assert_close(batched.val_loss[run], single.val_loss[0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(
            batched.grad_gram[run], single.grad_gram[0], rtol=1e-3, atol=1e-6
        )
        torch.testing.assert_close(
            batched_eval[1][run], single_eval[1][0], rtol=1e-4, atol=1e-5, equal_nan=True
        )


def test_same_seed_same_numbers_and_other_seed_differs():
    inst = small_suite().sample(0)
    a, _ = train_runs([inst], [1])
    b, _ = train_runs([inst], [1])
    c, _ = train_runs([inst], [2])
    assert torch.equal(a.val_loss, b.val_loss)
    assert not torch.equal(a.val_loss, c.val_loss)


def test_systematic_sampling_follows_probabilities():
    inst = small_suite(3, 3).sample(0)
    trainer = BatchedMultitaskTrainer([inst], [0], CONFIG)
    probs = torch.tensor([[0.5, 0.3, 0.2]])
    trainer.set_schedule(torch.ones(1, 3), probs)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        task, rows = trainer._sample_batch(torch.rand(1, 33, generator=gen))
        counts = torch.bincount(task[0], minlength=3).float()
        assert (counts - 32 * probs[0]).abs().max() <= 1.0
        # every row lies inside its own task's block of the training data
        start = trainer.offsets[0, task[0]]
        assert ((rows[0] >= start) & (rows[0] < start + trainer.sizes[0, task[0]])).all()


def test_sampling_never_draws_a_padded_slot_at_the_top_of_the_grid():
    """Probabilities whose float sum falls a hair under 1 (about one schedule in seven)
    once sent a draw at the very top of the grid to a padded slot, which has no rows: run
    0 then failed with an index error, other runs read their neighbour's data."""
    suite = small_suite(3, 3)
    trainer = BatchedMultitaskTrainer([suite.sample(s) for s in (1, 2)], [0, 1], CONFIG, 4)
    gen = torch.Generator().manual_seed(0)
    short = 0
    for _ in range(100):
        sampling = torch.cat([torch.rand(2, 3, generator=gen), torch.zeros(2, 1)], 1)
        trainer.set_schedule(torch.ones(2, 4), sampling)
        short += int((trainer.sampling.sum(1) < 1).sum())
        draws = torch.rand(2, CONFIG.batch_size + 1, generator=gen)
        draws[:, 0] = 1 - 2**-24  # the top of the grid
        task, rows = trainer._sample_batch(draws)
        assert (task < 3).all()
        start = trainer.offsets.gather(1, task)
        assert ((rows >= start) & (rows < start + trainer.sizes.gather(1, task))).all()
    assert short > 0  # the case the guard is for did occur


def test_gram_equals_autograd_per_task_gradients():
    """The Gram matrix the signals use is that of the true per-task gradients of the
    mean task loss on the last shared layer, computed here with plain autograd."""
    inst = small_suite(3, 3).sample(4)
    trainer = BatchedMultitaskTrainer([inst], [0], CONFIG)
    torch.manual_seed(0)
    gen_state = [g.get_state() for g in trainer.generators]
    draws = torch.stack([torch.rand(33, generator=g) for g in trainer.generators])
    task, rows = trainer._sample_batch(draws)
    for g, s in zip(trainer.generators, gen_state, strict=True):
        g.set_state(s)
    trainer.train(1)
    gram = trainer.measure().grad_gram[0]
    # recompute from scratch with the parameters before the step: rebuild the trainer
    fresh = BatchedMultitaskTrainer([inst], [0], CONFIG)
    x, y = fresh.x[0, rows[0]][None], fresh.y[0, rows[0]][None]
    _, proj_out = fresh.net(x)
    losses, _ = fresh._example_losses(proj_out, task, y)
    grads = []
    for k in range(3):
        sel = task[0] == k
        (g,) = torch.autograd.grad(losses[0, sel].mean(), fresh.net.proj.weight, retain_graph=True)
        grads.append(g[0].flatten())
    expected = torch.stack(grads) @ torch.stack(grads).T
    torch.testing.assert_close(gram[:3, :3], expected, rtol=1e-4, atol=1e-7)


def test_batched_adam_matches_torch_adam():
    torch.manual_seed(0)
    layer = BatchedLinear(2, 3, 2)
    layer.reset_run(0, seeded_generator(0))
    layer.reset_run(1, seeded_generator(1))
    ref = torch.nn.Parameter(layer.weight.detach()[1].clone())
    ours = BatchedOptimizer([layer.weight], 2, lr=0.01)
    theirs = torch.optim.Adam([ref], lr=0.01)
    for step in range(5):
        target = torch.randn(3, 2)
        layer.weight.grad = None
        ((layer.weight - target) ** 2).sum().backward()
        ours.step()
        theirs.zero_grad()
        ((ref - target) ** 2).sum().backward()
        theirs.step()
        torch.testing.assert_close(layer.weight.detach()[1], ref.detach(), msg=f"step {step}")


def test_batched_adam_keeps_one_step_count_per_run_and_skips_inactive_runs():
    """Two parameters, three runs: run 2 restarts mid-way (its own bias correction) and run
    1 sits out a step (left bit-for-bit unchanged); each run still equals torch's Adam."""
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(3, 4, 2))
    bias = torch.nn.Parameter(torch.randn(3, 2))
    ours = BatchedOptimizer([weight, bias], 3, lr=0.05)
    refs = [
        [
            torch.nn.Parameter(weight.detach()[r].clone()),
            torch.nn.Parameter(bias.detach()[r].clone()),
        ]
        for r in range(3)
    ]
    theirs = [torch.optim.Adam(params, lr=0.05) for params in refs]
    for step in range(6):
        if step == 3:  # run 2 starts afresh from its current parameters
            ours.reset_run(2)
            theirs[2] = torch.optim.Adam(refs[2], lr=0.05)
        active = torch.tensor([True, step != 4, True])
        target = torch.randn(4, 2)
        before = [weight.detach()[1].clone(), bias.detach()[1].clone()]
        weight.grad = 2 * (weight.detach() - target)  # assigned, as a step hook may do
        bias.grad = 2 * bias.detach()
        ours.step(active)
        for run in range(3):
            if not active[run]:
                continue
            w, b = refs[run]
            theirs[run].zero_grad()
            ((w - target) ** 2).sum().add((b**2).sum()).backward()
            theirs[run].step()
        if step == 4:
            assert torch.equal(weight.detach()[1], before[0])
            assert torch.equal(bias.detach()[1], before[1])
        for run in range(3):
            torch.testing.assert_close(weight.detach()[run], refs[run][0].detach())
            torch.testing.assert_close(bias.detach()[run], refs[run][1].detach())
    assert ours.steps.tolist() == [6.0, 5.0, 3.0]


def test_reset_run_restarts_only_that_run():
    suite = small_suite()
    insts = [suite.sample(0), suite.sample(1)]
    trainer = BatchedMultitaskTrainer(insts, [0, 1], CONFIG)
    trainer.train(10)
    before = trainer.net.proj.weight.detach().clone()
    trainer.reset_run(1, suite.sample(5), 7)
    assert torch.equal(trainer.net.proj.weight[0], before[0])
    assert int(trainer.steps[1]) == 0 and int(trainer.steps[0]) == 10
    assert int(trainer.optimizer.steps[1]) == 0


def test_absurd_learning_rate_diverges_without_touching_other_runs():
    suite = small_suite()
    insts = [suite.sample(0)]
    config = TrainerConfig(
        batch_size=32, proj_dim=16, val_probe=16, device="cpu", lr=1e12, optimizer="sgd"
    )
    trainer = BatchedMultitaskTrainer(insts, [0], config)
    trainer.train(20)
    assert bool(trainer.measure().diverged[0])


def test_set_schedule_rejects_bad_input():
    trainer = BatchedMultitaskTrainer([small_suite().sample(0)], [0], CONFIG)
    with pytest.raises(ValueError, match="shape"):
        trainer.set_schedule(torch.ones(1, 2), torch.ones(1, 2))
    with pytest.raises(ValueError, match="finite"):
        trainer.set_schedule(torch.full((1, 3), float("nan")), torch.ones(1, 3))
    with pytest.raises(ValueError, match="probability 0"):
        trainer.set_schedule(torch.ones(1, 3), torch.zeros(1, 3))


def test_incompatible_instance_is_refused_with_a_clear_error():
    trainer = BatchedMultitaskTrainer([small_suite().sample(0)], [0], CONFIG, max_tasks=3)
    with pytest.raises(ValueError, match="max_tasks"):
        trainer.reset_run(0, small_suite(5, 5).sample(0), 0)
    other = SyntheticSuite(settings=(SyntheticSetting(num_tasks=(2, 2)),), in_dim=8, hidden=(16,))
    with pytest.raises(ValueError, match="input shape"):
        trainer.reset_run(0, other.sample(0), 0)


def test_best_checkpoint_is_never_worse_on_the_probe():
    trainer = BatchedMultitaskTrainer([small_suite().sample(2)], [0], CONFIG)
    for _ in range(5):
        trainer.train(20)
        last = trainer.measure()
    assert float(trainer.best_j[0]) <= float(last.j[0]) + 1e-6


def test_a_run_does_not_depend_on_the_padding_of_its_batch():
    """Seed s gives the same run alone, beside a wider batch, or with a larger K_max."""
    inst = small_suite(2, 2).sample(0)
    alone, alone_eval = train_runs([inst], [3])
    wide = BatchedMultitaskTrainer([inst, small_suite(4, 4).sample(1)], [3, 4], CONFIG, max_tasks=6)
    wide.train(30)
    torch.testing.assert_close(wide.measure().val_loss[0, :2], alone.val_loss[0, :2])
    torch.testing.assert_close(wide.evaluate("test")[1][0, :2], alone_eval[1][0, :2])


def test_a_run_beside_its_twin_measures_what_it_does_alone_bit_for_bit():
    """Two runs of one seed side by side, and the same seed alone, measure the same
    per-task training loss at every step, bit for bit: a step's per-task sums are reduced
    run by run (an einsum over the batch rounded a run's sums by its place in it, on a
    third of these steps)."""
    instance = resolve_suite("envs/train-raw-aux.toml").sample(1)
    assert instance.num_tasks == 10
    alone = BatchedMultitaskTrainer([instance], [5], CPU)
    batched = BatchedMultitaskTrainer([instance] * 3, [5, 5, 6], CPU)
    for _ in range(20):
        alone.train(1)
        batched.train(1)
        one, three = alone.measure().train_loss, batched.measure().train_loss
        assert torch.equal(three[0], one[0]) and torch.equal(three[1], one[0])


def test_both_gram_routes_equal_the_explicit_gradients():
    from curriculum_rl.trainer.trainer import task_gradient_gram

    gen = torch.Generator().manual_seed(0)
    for rows, width in ((6, 32), (64, 4)):  # one short batch, one long batch: both routes
        a = torch.randn(2, rows, width, generator=gen)
        d = torch.randn(2, rows, width, generator=gen)
        task = torch.randint(3, (2, rows), generator=gen)
        one_hot = torch.nn.functional.one_hot(task, 3).float()
        grads = torch.stack(
            [
                torch.stack([a[n, task[n] == k].T @ d[n, task[n] == k] for k in range(3)])
                for n in range(2)
            ]
        ).flatten(2)
        expected = grads @ grads.transpose(1, 2)
        torch.testing.assert_close(
            task_gradient_gram(a, d, one_hot), expected, rtol=1e-4, atol=1e-4
        )


def _adam_trio(fused: bool | None, init: list[torch.Tensor], lr: float = 0.05):
    """Stacked parameters copied from ``init`` and a BatchedOptimizer over them."""
    params = [torch.nn.Parameter(t.clone()) for t in init]
    return params, BatchedOptimizer(params, init[0].shape[0], lr=lr, fused=fused)


def _step_adam_paths(optimizers, refs, gen, steps=8, lr=0.05):
    """Random gradients and random active runs for ``steps`` steps; every optimiser in
    ``optimizers`` ((params, opt) pairs) and torch's Adam per run (``refs``) take them.
    Run 0 is always active, run 1 restarts at step 4 (so step counts differ per run)."""
    runs = len(refs)
    theirs = [torch.optim.Adam(r, lr=lr) for r in refs]
    for step in range(steps):
        if step == 4:
            for _, opt in optimizers:
                opt.reset_run(1)
            theirs[1] = torch.optim.Adam(refs[1], lr=lr)
        active = (torch.rand(runs, generator=gen) < 0.6) | (torch.arange(runs) == 0)
        grads = [torch.randn(p.shape, generator=gen) for p in optimizers[0][0]]
        for params, opt in optimizers:
            for p, g in zip(params, grads, strict=True):
                p.grad = g.clone()
            opt.step(active if step else None)  # the first step: every run, no mask
        for run in range(runs):
            if active[run] or not step:
                for p, g in zip(refs[run], grads, strict=True):
                    p.grad = g[run].clone()
                theirs[run].step()


def _check_against_torch_adam(params, refs) -> None:
    for run, ref in enumerate(refs):
        for p, r in zip(params, ref, strict=True):
            torch.testing.assert_close(p.detach()[run], r.detach(), rtol=1e-6, atol=1e-7)


@pytest.mark.skipif(
    not fused_adam_supported(torch.device("cpu"), torch.float32),
    reason="torch's private fused Adam kernel is unavailable here",
)
def test_fused_and_public_adam_paths_agree_with_per_run_step_counts():
    """Both Adam paths give the same parameters after steps where runs sit out at random
    and one restarts (per-run step counts differ), and both equal torch's Adam per run."""
    gen = torch.Generator().manual_seed(0)
    init = [torch.randn(5, 4, 3, generator=gen), torch.randn(5, 3, generator=gen)]
    fused, public = _adam_trio(True, init), _adam_trio(False, init)
    assert fused[1].fused and not public[1].fused
    refs = [[torch.nn.Parameter(t[run].clone()) for t in init] for run in range(5)]
    _step_adam_paths([fused, public], refs, gen)
    assert len(set(fused[1].steps.tolist())) > 2  # the step counts really differ
    assert torch.equal(fused[1].steps, public[1].steps)
    for a, b in zip(fused[0], public[0], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    for params, _ in (fused, public):
        _check_against_torch_adam(params, refs)


@pytest.mark.parametrize("broken", ["missing", "NotImplementedError", "RuntimeError"])
def test_adam_falls_back_to_public_ops_without_the_fused_kernel(monkeypatch, broken):
    def refuse(*args, **kwargs):
        raise {"NotImplementedError": NotImplementedError, "RuntimeError": RuntimeError}[broken]

    if broken == "missing":
        monkeypatch.delattr(torch, "_fused_adam_")
    else:
        monkeypatch.setattr(torch, "_fused_adam_", refuse)
    fused_adam_supported.cache_clear()
    try:
        with pytest.raises(ValueError, match="fused Adam kernel is unavailable"):
            _adam_trio(True, [torch.zeros(2, 3)])
        gen = torch.Generator().manual_seed(1)
        init = [torch.randn(3, 4, generator=gen)]
        params, opt = _adam_trio(None, init)
        assert not opt.fused
        refs = [[torch.nn.Parameter(init[0][run].clone())] for run in range(3)]
        _step_adam_paths([(params, opt)], refs, gen)
        _check_against_torch_adam(params, refs)
    finally:
        fused_adam_supported.cache_clear()


class _WeightedLogLoss:
    """A step hook that backpropagates ``sum_k w_k log L_k`` (the defining objective of
    a loss normalisation of 1)."""

    def __init__(self, weights: torch.Tensor) -> None:
        self.weights = weights

    def backward(self, task_losses, weights, context) -> None:
        logs = task_losses.clamp_min(1e-12).log() * context.mask
        (self.weights * logs).sum().backward()


def _sgd_trainer(instances, seeds):
    return BatchedMultitaskTrainer(instances, seeds, helpers.SGD)


def test_a_loss_normalisation_of_one_steps_along_the_weighted_mean_log_loss():
    """At alpha = 1 every step follows the gradient of ``sum_k w_k log L_k`` (each task's
    loss divided by its own detached value), checked against that objective's autograd
    gradient under SGD; at alpha = 0 it is the weighted sum, which differs."""
    inst = small_suite(3, 3, scale_spread=(30.0, 30.0)).sample(0)
    weights = torch.tensor([[0.5, 1.0, 1.5]])
    sampling = torch.full((1, 3), 1 / 3)
    normalised, by_log, plain = (_sgd_trainer([inst], [4]) for _ in range(3))
    normalised.set_schedule(weights, sampling, torch.ones(1))
    by_log.set_schedule(torch.ones(1, 3), sampling)
    plain.set_schedule(weights, sampling)
    normalised.train(3)
    by_log.train(3, _WeightedLogLoss(weights))
    plain.train(3)
    torch.testing.assert_close(normalised.flat_params, by_log.flat_params, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(plain.flat_params, by_log.flat_params, rtol=1e-3, atol=1e-4)


def test_the_loss_normaliser_steps_along_the_log_of_the_floored_loss():
    """The gradient of ``L * loss_normaliser(L, alpha)`` is that of ``log max(L, EPS)`` at
    alpha = 1: ``grad L / L`` above the floor, 0 at or below it. A cross-entropy whose
    float32 value rounds to exactly 0 keeps a gradient; a factor ``1 / EPS`` there would
    multiply it by 1e12. At alpha = 0 the factor is 1 everywhere."""
    logits = torch.tensor([[0.0, 60.0], [1.0, 0.0]], requires_grad=True)
    per_example = torch.nn.functional.cross_entropy(logits, torch.tensor([1, 0]), reduction="none")
    assert per_example[0] == 0 and per_example[1] > 0  # rounded to 0 ...
    (solved_grad,) = torch.autograd.grad(per_example[0], logits, retain_graph=True)
    assert solved_grad.abs().max() > 0  # ... with a gradient all the same
    for alpha, expected in ((1.0, [0.0, 1 / per_example[1].item()]), (0.0, [1.0, 1.0])):
        factor = loss_normaliser(per_example, torch.tensor(alpha))
        torch.testing.assert_close(factor, torch.tensor(expected))
    (normalised,) = torch.autograd.grad(
        (per_example * loss_normaliser(per_example, torch.tensor(1.0))).sum(), logits,
        retain_graph=True,
    )  # fmt: skip
    (by_log,) = torch.autograd.grad(per_example.clamp_min(EPS).log().sum(), logits)
    torch.testing.assert_close(normalised, by_log)


class _RecordingHook:
    """Wraps a step hook and keeps the smallest task loss any step handed it."""

    def __init__(self, hook) -> None:
        self.hook, self.smallest = hook, math.inf

    def backward(self, task_losses, weights, context) -> None:
        self.smallest = min(self.smallest, task_losses[context.mask].min().item())
        self.hook.backward(task_losses, weights, context)


def test_loss_normalisation_one_takes_geometric_means_steps_through_a_loss_rounded_to_zero():
    """At alpha = 1 and scale 1/K the trainer's objective has the ``geometric-mean``
    heuristic's gradient exactly, so 400 Adam steps of the two stay together to round-off,
    also after the classification task's batch loss has rounded to exactly 0 (the whole
    run the RESULTS §37e bug broke: the old factor 1/EPS parted them by 0.1 at 300
    steps; measured 1e-6 after the fix)."""
    suite = TabularSuite(
        dataset="wine_chem", tasks=("alcohol", "malic_acid", "cultivar"),
        auxiliary=("cultivar",), hidden=(56, 48),
    )  # fmt: skip
    instance = suite.sample(0)
    config = TrainerConfig(device="cpu")
    decided, heuristic = (BatchedMultitaskTrainer([instance], [0], config) for _ in range(2))
    k = decided.mask.shape[1]
    uniform = torch.full((1, k), 1 / k)
    decided.set_schedule(torch.ones(1, k), uniform, torch.ones(1), torch.full((1,), 1 / k))
    heuristic.set_schedule(torch.ones(1, k), uniform)
    gm = make_controller("geometric-mean")
    gm.reset(RunContext(heuristic.mask, torch.ones(1, k), 400, 25, [0]))
    hook = _RecordingHook(gm.hook)
    decided.train(400)
    heuristic.train(400, hook)
    assert hook.smallest == 0.0  # the path under test ran
    torch.testing.assert_close(decided.flat_params, heuristic.flat_params, rtol=0, atol=1e-4)


def test_a_run_s_loss_normalisation_leaves_the_other_runs_bit_for_bit():
    suite = small_suite()
    insts = [suite.sample(0), suite.sample(1)]
    mixed, plain = (BatchedMultitaskTrainer(insts, [0, 1], CONFIG) for _ in range(2))
    weights, sampling = torch.ones(2, 3), torch.full((2, 3), 1 / 3)
    mixed.set_schedule(weights, sampling, torch.tensor([0.0, 0.7]))
    plain.set_schedule(weights, sampling)
    mixed.train(10)
    plain.train(10)
    assert torch.equal(mixed.flat_params[0], plain.flat_params[0])
    assert not torch.equal(mixed.flat_params[1], plain.flat_params[1])


@pytest.mark.parametrize(
    ("normalisation", "match"),
    [
        (torch.ones(2), "shape"),
        (torch.tensor([-0.1]), r"\[0, 1\]"),
        (torch.tensor([1.5]), r"\[0, 1\]"),
        (torch.tensor([float("nan")]), r"\[0, 1\]"),
    ],
)
def test_set_schedule_refuses_a_bad_loss_normalisation_and_keeps_the_schedule(normalisation, match):
    trainer = BatchedMultitaskTrainer([small_suite().sample(0)], [0], CONFIG)
    trainer.set_schedule(torch.ones(1, 3), torch.ones(1, 3), torch.tensor([0.5]))
    with pytest.raises(ValueError, match=match):
        trainer.set_schedule(torch.ones(1, 3) * 2, torch.ones(1, 3), normalisation)
    assert torch.equal(trainer.normalisation, torch.tensor([0.5]))
    assert torch.equal(trainer.weights, torch.ones(1, 3))


def test_a_runs_objective_scale_multiplies_its_step_and_leaves_the_other_runs_alone():
    """``scale`` s multiplies a run's whole objective: under SGD, scale 2 at lr 0.05 takes
    the step of weights 2 (the same objective); a run beside it at scale 1 is untouched bit
    for bit; a scale that is not finite and positive is refused by name."""
    suite = small_suite()
    insts = [suite.sample(0), suite.sample(1)]
    scaled, doubled, plain = (_sgd_trainer(insts, [0, 1]) for _ in range(3))
    weights, sampling = torch.ones(2, 3), torch.full((2, 3), 1 / 3)
    scaled.set_schedule(weights, sampling, scale=torch.tensor([1.0, 2.0]))
    doubled.set_schedule(torch.tensor([[1.0] * 3, [2.0] * 3]), sampling)
    plain.set_schedule(weights, sampling)
    for trainer in (scaled, doubled, plain):
        trainer.train(3)
    torch.testing.assert_close(scaled.flat_params, doubled.flat_params)
    assert torch.equal(scaled.flat_params[0], plain.flat_params[0])
    assert not torch.allclose(scaled.flat_params[1], plain.flat_params[1])
    for bad in (torch.tensor([1.0, 0.0]), torch.tensor([1.0, float("inf")]), torch.ones(3)):
        with pytest.raises(ValueError, match="scale must"):
            scaled.set_schedule(weights, sampling, scale=bad)
