"""CurriculumSession: every controller acts in a user's loop or is refused; the loss it
returns; checkpoints (resumed = uninterrupted); device-agnostic steps (no host reads in
loss(), one per decision; bf16 autocast)."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import curriculum_rl
from curriculum_rl.controllers import controller_names, make_controller
from curriculum_rl.controllers.learned.controller import LearnedController
from curriculum_rl.controllers.learned.network import NetworkConfig, TaskSetActor, init_weights
from curriculum_rl.session import CurriculumSession, GradientProbe
from curriculum_rl.session import session as session_module

K = 3
SCALES = torch.tensor([1.0, 10.0, 100.0])
LOSS_WEIGHTING = ["dwa", "uw", "famo", "rlw", "imtl-l", "geometric-mean"]
DECIDE_ONLY = ["uniform", "proportional", "annealed", "round-robin", "easy-to-hard", "exp3s"]
STATEFUL = ["learned", "exp3s", "tscl", "annealed", *LOSS_WEIGHTING]


def build(name: str) -> curriculum_rl.controllers.Controller:
    """A fresh controller; ``learned`` is a randomly initialised policy (fixed seed)."""
    if name == "learned":
        torch.manual_seed(0)
        actor = TaskSetActor(NetworkConfig(action_init_gain=1.0))
        init_weights(actor)
        return LearnedController(actor, 8)
    return make_controller(name)


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


def new_session(name: str) -> CurriculumSession:
    return CurriculumSession(build(name), num_tasks=K, budget=200, interval=10, seed=3)


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


def test_gradient_aggregators_and_gradnorm_are_refused_with_the_way_out():
    with pytest.raises(ValueError, match=r"torchjd\.autojac\.mtl_backward"):
        CurriculumSession(make_controller("pcgrad"), num_tasks=K, budget=100)
    with pytest.raises(ValueError, match="gradient norm"):
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


def test_a_checkpoint_of_another_controller_or_setting_is_refused():
    session = new_session("dwa")
    drive(session, 0, 25, [])
    state = session.state_dict()
    with pytest.raises(ValueError, match="'dwa'"):
        new_session("uw").load_state_dict(state)
    other = CurriculumSession(build("dwa"), num_tasks=K, budget=300, interval=10, seed=3)
    with pytest.raises(ValueError, match="budget 200"):
        other.load_state_dict(state)


def test_a_tampered_journal_is_detected():
    session = new_session("exp3s")
    drive(session, 0, 45, [])
    state = session.state_dict()
    state["journal.decisions"][1, K : 2 * K] *= 5  # other val losses at the second decision
    with pytest.raises(ValueError, match="replaying"):
        new_session("exp3s").load_state_dict(state)


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
        build("learned"), K, budget=100, interval=4, probe=GradientProbe(model.trunk[2])
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
        build("learned"), K, budget=100, interval=4, probe=GradientProbe(model.trunk[2])
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
    autocast = CurriculumSession(build("uw"), K, budget=60, interval=10)
    plain = CurriculumSession(build("uw"), K, budget=60, interval=10)
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
        build("learned"), K, budget=100, interval=5, probe=GradientProbe(model.trunk[2])
    )
    for step in range(5):
        x, y, tasks = batch(step)
        session.loss((model(x, tasks) - y) ** 2, tasks).backward()
        assert session.probe.armed == (step == 3)  # only for the last step before the decision
    session.update()
    cos = session.state.grad_cos[0]
    assert not session.probe.armed and torch.allclose(cos.diagonal(), torch.ones(K))
    assert (cos - torch.eye(K)).abs().sum() > 0  # measured, not the zeros of no probe


def test_the_core_and_the_session_never_import_the_frameworks():
    code = (
        "import sys, curriculum_rl; curriculum_rl.CurriculumSession; "
        "import curriculum_rl.session, curriculum_rl.integrations, curriculum_rl.diagnostics; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('lightning', 'pytorch_lightning', 'transformers', 'accelerate')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
