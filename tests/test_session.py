"""CurriculumSession: every controller acts in a user's loop or is refused; the loss it
returns; task errors measured as the trainer measures them; checkpoints (resumed =
uninterrupted); device-agnostic steps (no host reads in loss(), one per decision; bf16
autocast)."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import ROOT_LOSSES, make_test_controller
from torch import nn
from torch.func import functional_call

from curriculum_rl.controllers import controller_names, make_controller
from curriculum_rl.controllers.actions import GAMMA_SCALE
from curriculum_rl.controllers.base import Controller, RunContext
from curriculum_rl.controllers.decision import uniform_decision
from curriculum_rl.controllers.learned.controller import LearnedController
from curriculum_rl.controllers.learned.network import NetworkConfig, TaskSetActor
from curriculum_rl.controllers.observation import FEATURES
from curriculum_rl.loop import DecisionLoop
from curriculum_rl.session import CurriculumSession, GradientProbe
from curriculum_rl.session import session as session_module
from curriculum_rl.suites import SyntheticSetting, SyntheticSuite
from curriculum_rl.trainer import BatchedMultitaskTrainer, StepContext, TrainerConfig
from curriculum_rl.trainer.trainer import soft_error

K = 3
SCALES = torch.tensor([1.0, 10.0, 100.0])
LOSS_WEIGHTING = ["dwa", "uw", "famo", "rlw", "imtl-l", "geometric-mean"]
DECIDE_ONLY = ["uniform", "proportional", "annealed", "round-robin", "easy-to-hard", "exp3s"]
STATEFUL = ["learned", "gm-fallback-half", "exp3s", "tscl", "annealed", *LOSS_WEIGHTING]


def step_losses(step: int) -> torch.Tensor:
    """Deterministic per-task losses that fall at different rates, with some wobble."""
    t = torch.tensor(float(step))
    rates = torch.tensor([0.02, 0.005, 0.01])
    wobble = 1 + 0.2 * torch.sin(t * torch.tensor([0.7, 1.3, 2.1]))
    return SCALES * torch.exp(-rates * t) * wobble


def effective_weights(session: CurriculumSession, losses: torch.Tensor) -> torch.Tensor:
    """d session.loss(L) / d L_k: the weight each task's loss gets this step."""
    leaf = losses.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(session.loss(leaf), leaf)
    return grad


def drive(session: CurriculumSession, start: int, stop: int, trace: list) -> None:
    """Steps ``start..stop-1`` of a scripted run; record step weights and decisions."""
    for step in range(start, stop):
        trace.append(("step", step, effective_weights(session, step_losses(step))))
        if session.decision_due:
            val = step_losses(step) * 1.1
            gram = torch.eye(K) + 0.1 * math.sin(step) * torch.ones(K, K)
            weights, sampling = session.update(val_losses=val, grad_gram=gram)
            trace.append(("decision", step, torch.cat([weights, sampling])))


KINDS = ["classification", "regression", "tagging"]


def new_session(name: str) -> CurriculumSession:
    return CurriculumSession(
        make_test_controller(name), num_tasks=K, budget=200, interval=10, seed=3, task_kinds=KINDS
    )


# ------------------------------------------------------------------ who acts, who is refused
@pytest.mark.parametrize("name", controller_names(available_only=True))
def test_every_controller_acts_or_is_refused(name: str):
    try:
        session = CurriculumSession(make_controller(name), num_tasks=K, budget=200, interval=10)
    except ValueError as err:
        assert name in {"gradnorm", "mgda", "pcgrad", "imtl-g", "aligned-mtl", *_optional()}
        assert "acts on losses" in str(err) and "uw" in str(err)
        return
    trace: list = []
    drive(session, 0, 60, trace)
    steps = torch.stack([w for kind, _, w in trace if kind == "step"])
    decisions = torch.stack([d for kind, _, d in trace if kind == "decision"])
    assert torch.isfinite(steps).all() and torch.isfinite(decisions).all()
    if name in LOSS_WEIGHTING:  # weights that depend on the losses: never silently uniform
        assert (steps.max(1).values - steps.min(1).values).max() > 1e-3, steps[-1]


def _optional() -> set[str]:
    return {"upgrad", "cagrad", "nash-mtl"}


def test_geometric_mean_weighs_each_loss_by_its_inverse():
    session = CurriculumSession(make_controller("geometric-mean"), num_tasks=K, budget=100)
    losses = step_losses(0)
    torch.testing.assert_close(effective_weights(session, losses), 1 / (K * losses))


@pytest.mark.parametrize("name, alpha", ROOT_LOSSES.items())
def test_a_root_loss_weighs_each_loss_by_a_power_of_itself_in_the_users_loop(name, alpha):
    """A root loss acts through its decision's loss normalisation: once its first decision
    is in force, a step's loss weighs task k by ``1 / L_k^alpha`` (1/2 for ``sqrt-loss``,
    3/4 for ``fourth-root-loss``)."""
    session = CurriculumSession(make_controller(name), num_tasks=K, budget=100)
    session.update(train_losses=step_losses(0))
    losses = step_losses(1)
    torch.testing.assert_close(effective_weights(session, losses), losses**-alpha)


def test_a_decision_s_loss_normalisation_divides_each_loss_by_its_own_value():
    """Under a decision with normalisation alpha, a step's loss weighs task k by
    ``w_k / L_k^alpha`` (the trainer's objective); ``update()`` alone cannot apply it."""
    session = new_session("gm-fallback-half")
    session.update(train_losses=step_losses(0))
    in_force = session.loop.previous
    alpha = float(in_force.normalisation[0])
    assert 0.2 < alpha < 0.8
    losses = step_losses(1)
    torch.testing.assert_close(
        effective_weights(session, losses), in_force.weights[0] * losses**-alpha
    )
    session.update()
    with pytest.raises(RuntimeError, match=r"session\.loss"):
        session.update(train_losses=torch.ones(K))


def test_uncertainty_weighting_learns_its_log_variances_in_the_users_loop():
    controller = make_controller("uw")
    session = CurriculumSession(controller, num_tasks=K, budget=500, interval=25)
    first = effective_weights(session, step_losses(0))
    torch.testing.assert_close(first, torch.full((K,), 0.5))  # 0.5 exp(-s), s = 0
    for step in range(1, 200):
        s = controller.log_variances[0].clone()  # the step weighs, then learns s
        weights = effective_weights(session, step_losses(step))
        if session.decision_due:
            session.update()
    torch.testing.assert_close(weights, 0.5 * torch.exp(-s))
    # s moves toward log L_k: task 0's loss fell below 1, the others stayed above
    assert s[0] < -0.05 and (s[1:] > 0.05).all()


def test_dwa_matches_torchjd_fed_the_same_losses():
    from torchjd.scalarization import DWA

    session = CurriculumSession(make_controller("dwa"), num_tasks=K, budget=300, interval=10)
    reference = DWA(2.0)
    for step in range(60):
        losses = step_losses(step)
        leaf = losses.clone().requires_grad_(True)
        reference(leaf).backward()
        torch.testing.assert_close(effective_weights(session, losses), leaf.grad)
        if session.decision_due:
            session.update()
            reference.step()


def test_a_per_step_controller_without_loss_calls_is_an_error():
    session = CurriculumSession(make_controller("uw"), num_tasks=K, budget=100)
    session.update(train_losses=torch.ones(K))  # the first decision, before any step
    with pytest.raises(RuntimeError, match=r"session\.loss"):
        session.update(train_losses=torch.ones(K))


def test_gradient_aggregators_and_gradnorm_without_a_layer_are_refused_with_the_way_out():
    with pytest.raises(ValueError, match=r"torchjd\.autojac\.mtl_backward"):
        CurriculumSession(make_controller("pcgrad"), num_tasks=K, budget=100)
    with pytest.raises(ValueError, match=r"gradient norm.*probe=GradientProbe"):
        CurriculumSession(make_controller("gradnorm"), num_tasks=K, budget=100)


# ------------------------------------------------------------------ the loss and the cadence
def test_per_example_loss_follows_the_trainers_convention():
    session = CurriculumSession(make_controller("uniform"), num_tasks=K, budget=100, interval=2)
    losses = torch.tensor([1.0, 3.0, 10.0, 20.0, 30.0, 2.0])
    tasks = torch.tensor([0, 0, 1, 1, 1, 2])
    # L_k = (K / B) sum over task k's examples; uniform weights 1
    assert session.loss(losses, tasks).item() == pytest.approx((4 + 60 + 2) * K / 6)
    assert not session.decision_due
    session.loss(losses, tasks)
    assert session.decision_due
    session.update()
    train = session.state.train_loss[0]  # the interval's mean loss per example of each task
    torch.testing.assert_close(train, torch.tensor([2.0, 20.0, 2.0]))
    assert int(session.state.steps[0]) == 2


def test_the_legacy_call_still_works_with_numpy():
    session = CurriculumSession(make_controller("uniform"), num_tasks=K, budget=100)
    w, p = session.update(np.array([0.9, 9.0, 90.0]), [1.0, 9.5, 95.0], task_grads=np.eye(K))
    assert isinstance(w, np.ndarray) and w.shape == (K,) and p.sum() == pytest.approx(1)
    with pytest.raises(ValueError, match="shape"):
        session.update(torch.ones(4))
    with pytest.raises(ValueError, match="no losses"):
        session.update()


def test_wrong_shapes_name_the_fix():
    session = CurriculumSession(make_controller("uniform"), num_tasks=K, budget=100)
    with pytest.raises(ValueError, match="task_ids"):
        session.loss(torch.ones(5))
    with pytest.raises(ValueError, match="one number"):
        session.loss(torch.ones(4, 2), torch.zeros(4, 2, dtype=torch.long))


# ------------------------------------------------------------------ checkpoints
@pytest.mark.parametrize("name", ["uniform", *STATEFUL])
def test_resumed_run_equals_uninterrupted_run(name: str, tmp_path):
    whole: list = []
    drive(new_session(name), 0, 140, whole)
    first: list = []
    interrupted = new_session(name)
    drive(interrupted, 0, 67, first)  # stop mid-interval
    torch.save(interrupted.state_dict(), tmp_path / "session.pt")
    state = torch.load(tmp_path / "session.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    resumed = new_session(name)  # a fresh process would build it the same way
    resumed.load_state_dict(state)
    rest: list = []
    drive(resumed, 67, 140, rest)
    assert len(whole) == len(first) + len(rest)
    for (kind_a, step_a, a), (kind_b, step_b, b) in zip(whole, first + rest, strict=True):
        assert (kind_a, step_a) == (kind_b, step_b)
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"{name}: {kind_a} {step_a}")


def test_a_run_resumed_mid_interval_keeps_its_examples_errors():
    """Per-example losses of classification tasks: the interval's error sums travel in
    the checkpoint, so the decisions after a resume read the same errors."""

    def run(session: CurriculumSession, steps: range) -> list[torch.Tensor]:
        decisions = []
        for step in steps:
            gen = torch.Generator().manual_seed(step)
            tasks = torch.arange(12) % K
            session.loss(torch.rand(12, generator=gen) * (1 + tasks), tasks)
            if session.decision_due:
                session.update()
                decisions.append(
                    torch.cat([session.state.val_error[0], session.loop.previous.weights[0]])
                )
        return decisions

    whole = run(new_session("learned"), range(40))
    interrupted = new_session("learned")
    first = run(interrupted, range(17))
    resumed = new_session("learned")
    resumed.load_state_dict(interrupted.state_dict())
    rest = run(resumed, range(17, 40))
    assert len(whole) == 4 and len(first + rest) == 4
    for a, b in zip(whole, first + rest, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (whole[-1][:K][[0, 2]] < 1).all()  # classification and tagging: soft errors


def test_a_checkpoint_of_another_controller_or_setting_is_refused():
    session = new_session("dwa")
    drive(session, 0, 25, [])
    state = session.state_dict()
    with pytest.raises(ValueError, match="'dwa'"):
        new_session("uw").load_state_dict(state)
    other = CurriculumSession(
        make_test_controller("dwa"), num_tasks=K, budget=300, interval=10, seed=3, task_kinds=KINDS
    )
    with pytest.raises(ValueError, match="budget 200"):
        other.load_state_dict(state)
    regression = CurriculumSession(
        make_test_controller("dwa"), num_tasks=K, budget=200, interval=10, seed=3
    )
    with pytest.raises(ValueError, match=r"task_kinds \['classification'"):
        regression.load_state_dict(state)


def test_a_tampered_journal_is_detected():
    session = new_session("exp3s")
    drive(session, 0, 45, [])
    state = session.state_dict()
    state["journal.decisions"][1, K : 2 * K] *= 5  # other val losses at the second decision
    with pytest.raises(ValueError, match="replaying"):
        new_session("exp3s").load_state_dict(state)


# ------------------------------------------------------------------ task kinds and errors
def mixed_trainer() -> tuple[BatchedMultitaskTrainer, list[str]]:
    """A trainer run on one regression and two classification tasks (probe of 16)."""
    setting = SyntheticSetting("mixed", num_tasks=(K, K), classification=(0.5, 0.5))
    suite = SyntheticSuite(
        name="mixed", settings=(setting,), n_train=128, n_val=64, n_test=64, hidden=(16,)
    )
    instance = suite.sample(0)
    config = TrainerConfig(batch_size=32, proj_dim=16, val_probe=16, device="cpu")
    kinds = [task.kind for task in instance.tasks]
    assert sorted(kinds) == ["classification", "classification", "regression"]
    return BatchedMultitaskTrainer([instance], [0], config), kinds


@torch.no_grad()
def probe_example_losses(trainer: BatchedMultitaskTrainer) -> torch.Tensor:
    """(K * V,) the per-example losses behind the trainer's next measure(), task-major."""
    _, proj_out = trainer.net(trainer.x_probe)
    losses, _ = trainer._example_losses(proj_out, trainer.probe_task, trainer.y_probe)
    return losses[0]


def test_a_session_measures_classification_errors_as_the_trainer_does():
    """The trainer's validation-probe losses handed to a session as one interval's
    per-example losses: the same val_error and classify, hence the same error, kind,
    validation and budget features of the observation, decision after decision."""
    trainer, kinds = mixed_trainer()
    budget = 300
    session = CurriculumSession(
        make_controller("uniform"), K, budget=budget, interval=1, task_kinds=kinds
    )
    reference = DecisionLoop(trainer.mask, torch.ones(1, K), budget)
    same = [
        FEATURES.index(name)
        for name in (
            "log_val_centred",
            "log_val_ratio",
            "is_classification",
            "log_error_centred",
            "log_error_ratio",
            "progress",
            "log_budget",
        )
    ]
    for _ in range(3):
        trainer.train(10)
        losses = probe_example_losses(trainer)
        measured = trainer.measure()
        session.loss(losses, trainer.probe_task[0])
        session.update(step=int(measured.steps[0]))
        expected = reference.observe(measured)
        mine = session.state
        assert torch.equal(mine.classify, measured.classify)
        assert int(mine.budget[0]) == budget and torch.equal(mine.budget, expected.budget)
        torch.testing.assert_close(mine.val_loss, measured.val_loss)
        torch.testing.assert_close(mine.val_error, measured.val_error)
        torch.testing.assert_close(mine.observation()[..., same], expected.observation()[..., same])
    classify = measured.classify[0]
    assert (mine.val_error[0, classify] < 1).all()  # bounded, unlike their cross-entropy
    assert not torch.allclose(mine.val_error[0, classify], mine.val_loss[0, classify])


def test_per_task_mean_losses_are_read_as_val_counts_examples_at_the_mean():
    """val_losses (K,): each task's error is soft_error of val_counts examples all at its
    mean loss, an upper bound on the exact error (1 - exp(-CE) is concave)."""
    trainer, kinds = mixed_trainer()
    trainer.train(10)
    losses = probe_example_losses(trainer).view(K, 16)
    measured = trainer.measure()
    classify = measured.classify[0]
    session = CurriculumSession(make_controller("uniform"), K, budget=100, task_kinds=kinds)
    session.update(val_losses=losses.mean(1), val_counts=16)
    at_the_mean = soft_error(losses.mean(1, keepdim=True).expand(K, 16), classify)
    torch.testing.assert_close(session.state.val_error[0], at_the_mean)
    assert (at_the_mean >= measured.val_error[0] - 1e-6).all()
    session.update(val_losses=losses.mean(1))  # 64 examples, the probe of training
    default = soft_error(losses.mean(1, keepdim=True).expand(K, 64), classify)
    torch.testing.assert_close(session.state.val_error[0], default)
    with pytest.raises(ValueError, match="pass both"):
        session.update(train_losses=losses.mean(1), val_counts=16)
    with pytest.raises(ValueError, match=">= 1 example"):
        session.update(val_losses=losses.mean(1), val_counts=[16, 0, 16])


def constant_policy(gamma: float) -> LearnedController:
    """A loss_power policy whose action is (0, 0, gamma / GAMMA_SCALE) on every task:
    weights proportional to E_k^-gamma, sampling uniform."""
    actor = TaskSetActor(NetworkConfig(action_dim=3))
    with torch.no_grad():
        actor.head.weight.zero_()
        actor.head.bias.copy_(torch.tensor([0.0, 0.0, gamma / GAMMA_SCALE]))
    return LearnedController(actor, 8, action="loss_power")


def test_the_loss_power_policy_weighs_classification_tasks_by_their_soft_error():
    ce = torch.tensor([0.05, 0.1, 0.2, 0.1, 2.0, 1.5, 2.5, 1.0])  # tasks 0 (solved), 1
    mse = torch.tensor([4.0, 6.0, 5.0, 5.0])  # task 2
    losses, tasks = torch.cat([ce, mse]), torch.arange(K).repeat_interleave(4)
    kinds = ["classification", "classification", "regression"]
    aware = CurriculumSession(constant_policy(1.0), K, budget=100, interval=1, task_kinds=kinds)
    aware.loss(losses, tasks)
    weights, _ = aware.update()
    error = soft_error(losses.view(K, 4), torch.tensor([True, True, False]))
    torch.testing.assert_close(weights, K * (1 / error) / (1 / error).sum())
    # Read as regression, the solved task's tiny cross-entropy would dwarf the other's;
    # its soft error favours it at most V + 1 = 5-fold.
    blind = CurriculumSession(constant_policy(1.0), K, budget=100, interval=1)
    blind.loss(losses, tasks)
    blind_weights, _ = blind.update()
    mean = losses.view(K, 4).mean(1)
    torch.testing.assert_close(blind_weights, K * (1 / mean) / (1 / mean).sum())
    assert blind_weights[0] / blind_weights[1] > 15 and weights[0] / weights[1] < 5


def test_task_kinds_are_checked():
    uniform = make_controller("uniform")
    with pytest.raises(ValueError, match=r"\['classification'\] \* 3"):
        CurriculumSession(uniform, K, budget=100, task_kinds="classification")
    with pytest.raises(ValueError, match="2 kinds for 3 tasks"):
        CurriculumSession(uniform, K, budget=100, task_kinds=["regression"] * 2)
    with pytest.raises(ValueError, match=r"unknown task kinds \['ranking'\]"):
        CurriculumSession(uniform, K, budget=100, task_kinds=["regression", "ranking", "tagging"])


# ------------------------------------------------------------------ devices
class TwoTaskNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh())
        self.heads = nn.Linear(16, K)

    def forward(self, x: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:
        return self.heads(self.trunk(x)).gather(1, tasks[:, None])[:, 0]


def batch(step: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(step)
    x = torch.randn(24, 6, generator=gen)
    tasks = torch.arange(24) % K
    y = x[:, 0] * SCALES[tasks]
    return x.to(device), y.to(device), tasks.to(device)


def test_loss_never_reads_the_device_and_a_decision_reads_it_once(monkeypatch):
    """On the meta device any host read fails: loss() must not make one, and update() must
    make exactly one (its fetch, stood in for here)."""
    fetched = []

    def fetch(values: torch.Tensor) -> torch.Tensor:
        fetched.append(values.shape)
        return torch.linspace(1.0, 2.0, values.numel())  # stands for the device's numbers

    monkeypatch.setattr(session_module, "_to_host", fetch)
    model = TwoTaskNet().to("meta")
    session = CurriculumSession(
        make_test_controller("learned"),
        K,
        budget=100,
        interval=4,
        probe=GradientProbe(model.trunk[2]),
    )
    for step in range(12):
        x, y, tasks = batch(step, "meta")
        loss = session.loss((model(x, tasks) - y) ** 2, tasks)
        loss.backward()
        if session.decision_due:
            session.update()
    assert len(fetched) == 3 and session.calls == 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_loss_never_synchronises_and_a_decision_once():
    """The GPU path (run wherever a GPU is lent): no host sync in loss() under bf16
    autocast, the probe included, and at most one in update()."""
    model = TwoTaskNet().cuda()
    session = CurriculumSession(
        make_test_controller("learned"),
        K,
        budget=100,
        interval=4,
        probe=GradientProbe(model.trunk[2]),
    )
    for step in range(12):
        x, y, tasks = batch(step, "cuda")
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = session.loss((model(x, tasks).float() - y) ** 2, tasks)
            loss.backward()
        finally:
            torch.cuda.set_sync_debug_mode(0)
        if session.decision_due:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")
                try:
                    session.update()
                finally:
                    torch.cuda.set_sync_debug_mode(0)
            syncs = [w for w in caught if "synchroniz" in str(w.message)]
            assert len(syncs) <= 1, [str(w.message) for w in syncs]
    assert session.calls == 3


def test_bf16_autocast_losses_decide_as_their_fp32_values():
    """Under autocast the session adds no low-precision error of its own: bf16 losses give
    the decisions of their float32 values handed in without autocast."""
    torch.manual_seed(0)
    model = TwoTaskNet()
    autocast = CurriculumSession(make_test_controller("uw"), K, budget=60, interval=10)
    plain = CurriculumSession(make_test_controller("uw"), K, budget=60, interval=10)
    for step in range(40):
        x, y, tasks = batch(step)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            losses = (model(x, tasks) - y.bfloat16()) ** 2
            assert losses.dtype == torch.bfloat16
            loss = autocast.loss(losses, tasks)
        assert loss.dtype == torch.float32
        loss.backward()
        torch.testing.assert_close(loss, plain.loss(losses.detach().float(), tasks), atol=0, rtol=0)
        if autocast.decision_due:
            torch.testing.assert_close(autocast.update(), plain.update(), atol=0, rtol=0)


def test_the_probe_under_bf16_autocast_measures_the_fp32_gram():
    torch.manual_seed(0)
    model, (x, y, tasks) = TwoTaskNet(), batch(0)
    grams = []
    for enabled in (True, False):
        probe = GradientProbe(model.trunk[2])
        probe.arm()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            losses = (model(x, tasks).float() - y) ** 2
        grams.append(probe.gram(losses, tasks, K))
    low, full = grams
    assert low.dtype == torch.float32
    assert (low - full).norm() < 0.05 * full.norm()


def test_the_probe_feeds_the_controller_alignment():
    model = TwoTaskNet()
    session = CurriculumSession(
        make_test_controller("learned"),
        K,
        budget=100,
        interval=5,
        probe=GradientProbe(model.trunk[2]),
    )
    for step in range(5):
        x, y, tasks = batch(step)
        session.loss((model(x, tasks) - y) ** 2, tasks).backward()
        assert session.probe.armed == (step == 3)  # only for the last step before the decision
    session.update()
    cos = session.state.grad_cos[0]
    assert not session.probe.armed and torch.allclose(cos.diagonal(), torch.ones(K))
    assert (cos - torch.eye(K)).abs().sum() > 0  # measured, not the zeros of no probe


# ------------------------------------------------------------------ GradNorm
def test_gradnorm_in_a_session_is_gradnorm_in_the_trainer():
    """GradNorm on the probe's layer in a user's loop, against its trainer hook on the same
    computation (the layer's weight stacked over one run, as the trainer holds it): the
    same learned weights, and the same gradients reach the model."""
    model = TwoTaskNet()
    layer = model.trunk[2]
    session = CurriculumSession(
        make_controller("gradnorm"), K, budget=200, interval=10, probe=GradientProbe(layer)
    )
    reference = make_controller("gradnorm")
    mask = torch.ones(1, K, dtype=torch.bool)
    reference.reset(RunContext(mask, torch.ones(1, K), 200, 10, [0]))
    stacked = nn.Parameter(layer.weight.detach().clone()[None])
    context = StepContext([], [], mask, torch.ones(1, dtype=torch.bool), stacked)
    for step in range(30):
        x, y, tasks = batch(step)
        model.zero_grad()
        session.loss((model(x, tasks) - y) ** 2, tasks).backward()
        mine = {name: p.grad.clone() for name, p in model.named_parameters()}
        model.zero_grad()
        out = functional_call(model, {"trunk.2.weight": stacked[0]}, (x, tasks))
        per_task = torch.zeros(K).index_add(0, tasks, (out - y) ** 2) * (K / len(tasks))
        reference.hook.backward(per_task[None], torch.ones(1, K), context)
        theirs = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
        theirs["trunk.2.weight"], stacked.grad = stacked.grad[0], None
        torch.testing.assert_close(mine, theirs)
        torch.testing.assert_close(session.controller.task_weights, reference.task_weights)
        if session.decision_due:
            session.update()
    assert (reference.task_weights - 1).abs().max() > 0.05  # it learned, not uniform


def test_a_resumed_gradnorm_run_equals_the_uninterrupted_one():
    model = TwoTaskNet()

    def run(session: CurriculumSession, steps: range) -> list[torch.Tensor]:
        trace = []
        for step in steps:
            x, y, tasks = batch(step)
            losses = (model(x, tasks) - y) ** 2
            (grad,) = torch.autograd.grad(session.loss(losses, tasks), losses)
            trace.append(grad)  # each example's weight
            if session.decision_due:
                trace.append(torch.cat(session.update()))
        return trace

    def fresh() -> CurriculumSession:
        probe = GradientProbe(model.trunk[2])
        return CurriculumSession(make_controller("gradnorm"), K, 200, 10, probe=probe)

    whole = run(fresh(), range(40))
    interrupted = fresh()
    first = run(interrupted, range(23))
    state = interrupted.state_dict()
    assert state["journal.steps"].shape == (23, 2 * K)  # losses and gradient norms
    resumed = fresh()
    resumed.load_state_dict(state)
    rest = run(resumed, range(23, 40))
    for a, b in zip(whole, first + rest, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.slow  # a fresh interpreter per framework
def test_the_core_and_the_session_never_import_the_frameworks():
    code = (
        "import sys, curriculum_rl; curriculum_rl.CurriculumSession; "
        "import curriculum_rl.session, curriculum_rl.integrations, curriculum_rl.diagnostics; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('lightning', 'pytorch_lightning', 'transformers', 'accelerate')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


class _Doubling(Controller):
    """Uniform decisions at objective scale 2 (``Decision.scale``)."""

    name = "doubling"

    def decide(self, signals):
        return replace(uniform_decision(signals.mask), scale=torch.full((1,), 2.0))


def test_a_decisions_scale_multiplies_the_users_loss_and_survives_a_checkpoint():
    """In a user's loop the decision's objective ``scale`` multiplies every step's loss
    (as the trainer does), ``update()`` alone cannot apply it, and a resumed session puts
    the same scale in force; a state saved before scales existed loads at scale 1."""
    session = CurriculumSession(_Doubling(), num_tasks=K, budget=100, interval=10)
    losses = step_losses(0)
    torch.testing.assert_close(effective_weights(session, losses), torch.ones(K))
    session.update(train_losses=losses)
    torch.testing.assert_close(effective_weights(session, losses), torch.full((K,), 2.0))
    session.update()
    with pytest.raises(RuntimeError, match=r"session\.loss"):
        session.update(train_losses=torch.ones(K))
    state = session.state_dict()
    assert state["in_force_scale"].tolist() == [2.0]
    resumed = CurriculumSession(_Doubling(), num_tasks=K, budget=100, interval=10)
    resumed.load_state_dict(state)
    torch.testing.assert_close(effective_weights(resumed, losses), torch.full((K,), 2.0))
    plain = CurriculumSession(make_controller("uniform"), num_tasks=K, budget=100, interval=10)
    plain.update(train_losses=losses)
    old = {k: v for k, v in plain.state_dict().items() if k != "in_force_scale"}
    again = CurriculumSession(make_controller("uniform"), num_tasks=K, budget=100, interval=10)
    again.load_state_dict(old)
    assert again.loop.previous.scale.tolist() == [1.0]
