"""Speed of the environment, as ratios measured in one run (the machine is shared).

* ``batched_speedup``: one N=16 batched VecEnv step vs 16 separate single-run envs each
  doing one step (same suites, same inner steps). Target >= 10 on a 2-core CPU.
* ``env_overhead``: one single-run env step (D inner steps + validation probe + signals
  incl. per-task gradient alignment + observation) vs a plain PyTorch multitask loop
  (``nn.Module`` trunk + heads, ``torch.optim.Adam``, fixed weights) doing the same D
  inner steps on the same data. Target <= 1.15.
* ``batched_speedup_vs_plain_loops``: the N=16 batched step vs the plain PyTorch loop
  below run once for each of its 16 suite instances (interleaved with the two above): the
  speed-up over what a user would otherwise write, not over our own single env.
* ``env_overhead_vs_trainer``: the same env step vs our trainer's bare ``train(D)``, i.e.
  the cost of measuring and observing alone.
* ``scaling_fixed_ms`` / ``scaling_per_run_ms``: a least-squares line through the batched
  step time at N = 1, 2, 4, 8, 16: what a step costs regardless of N (dispatch, Python)
  and what each extra run adds (arithmetic). 16 separate envs pay the fixed part 16 times,
  the batched env once, so ``batched_speedup`` <= 16 (fixed + per_run) / (fixed + 16
  per_run): it rises only when per-run arithmetic gets cheaper.
* ``two_threads_single`` / ``two_threads_batched``: a single env step and an N=16 batched
  step with 2 torch threads over the same with 1 (< 1: two threads help), interleaved in
  one process by switching ``torch.set_num_threads``; absent on a 1-core machine.
* ``bmm_speedup_over_vmap``: the MLP body as stacked ``baddbmm`` vs the same network as an
  ``nn.Sequential`` run through ``torch.func.vmap`` (N=16, D inner steps).

Each figure is the ratio of medians over interleaved repetitions.

    python benchmarks/env_speed.py [--reps 5] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from curriculum_rl.agents.vec_env import BatchedCurriculumVecEnv
from curriculum_rl.env import CurriculumEnv, EnvConfig
from curriculum_rl.suites import MLPBody, ModuleBody, SuiteInstance
from curriculum_rl.trainer import BatchedMultitaskTrainer, TrainerConfig

ENV_KW = {"budget": 1500, "interval": 25, "trainer": {"device": "cpu"}}


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(fns: dict[str, Callable[[], None]], reps: int) -> dict[str, float]:
    """Median seconds of each function, alternating them so drifts in machine load hit
    all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            times[name].append(timed(fn))
    return {name: statistics.median(ts) for name, ts in times.items()}


def seeded_vec_env(n: int) -> BatchedCurriculumVecEnv:
    vec = BatchedCurriculumVecEnv(n, **ENV_KW)
    vec.seed(0)
    vec.reset()
    return vec


def step_single(env: CurriculumEnv, action: np.ndarray) -> None:
    """One decision of a single env, starting a new episode when one ends (as a VecEnv does)."""
    _, _, terminated, _, _ = env.step(action)
    if terminated:
        env.reset()


class PlainMultitaskNet(nn.Module):
    """What a user would write: MLP trunk, projection, one linear head per task."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], proj: int, k: int) -> None:
        super().__init__()
        dims = (in_dim, *hidden)
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(dims):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.trunk = nn.Sequential(*layers, nn.Linear(dims[-1], proj), nn.ReLU())
        self.heads = nn.ModuleList(nn.Linear(proj, 1) for _ in range(k))

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [head(self.trunk(x)) for head, x in zip(self.heads, xs, strict=True)]


def plain_loop(instance: SuiteInstance, env_config: EnvConfig) -> Callable[[], None]:
    """What a user would write for one run of ``instance``: D inner steps of a plain
    multitask loop with fixed (uniform) weights and ``torch.optim.Adam``."""
    if not isinstance(instance.body, MLPBody) or any(
        t.kind != "regression" or t.out_dim != 1 for t in instance.tasks
    ):
        raise ValueError("the plain loop is written for an MLP body and 1-output regression")
    config = env_config.trainer
    k, batch, interval = instance.num_tasks, config.batch_size, env_config.interval
    net = PlainMultitaskNet(instance.body.in_dim, instance.body.hidden, config.proj_dim, k)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    data = [(d.x_train, d.y_train) for d in instance.data]
    gen = torch.Generator().manual_seed(0)
    per_task = [batch // k + (1 if i < batch % k else 0) for i in range(k)]

    def run() -> None:
        for _ in range(interval):
            idx = [
                torch.randint(len(x), (m,), generator=gen)
                for (x, _), m in zip(data, per_task, strict=True)
            ]
            outs = net([x[i] for (x, _), i in zip(data, idx, strict=True)])
            loss = (
                sum(((o - y[i]) ** 2).sum() for o, (_, y), i in zip(outs, data, idx, strict=True))
                * k
                / batch
            )
            opt.zero_grad()
            loss.backward()
            opt.step()

    return run


def batched_vs_separate(n: int, reps: int) -> dict[str, float]:
    vec = seeded_vec_env(n)
    singles = [CurriculumEnv(**ENV_KW) for _ in range(n)]
    for i, env in enumerate(singles):
        env.reset(seed=i)
    plain_loops = [plain_loop(instance, vec.config) for instance in vec._core.trainer.instances]
    zero = np.zeros((n, *vec.action_space.shape), np.float32)

    def step_batched() -> None:
        vec.step(zero)

    def step_separate() -> None:
        for env in singles:
            step_single(env, zero[0])

    def run_plain_loops() -> None:
        for loop in plain_loops:
            loop()

    t = interleaved(
        {"batched": step_batched, "separate": step_separate, "plain": run_plain_loops}, reps
    )
    return {
        "batched_step_s": t["batched"],
        "separate_steps_s": t["separate"],
        "plain_loops_s": t["plain"],
        "batched_speedup": t["separate"] / t["batched"],
        "batched_speedup_vs_plain_loops": t["plain"] / t["batched"],
    }


def env_vs_plain_loop(reps: int) -> dict[str, float]:
    env = CurriculumEnv(**ENV_KW)
    env.reset(seed=0)
    instance = env._core.trainer.instances[0]
    config, interval = env.config.trainer, env.config.interval
    trainer = BatchedMultitaskTrainer([instance], [0], config, max_tasks=8)
    zero = np.zeros(env.action_space.shape, np.float32)

    t = interleaved(
        {
            "env": lambda: step_single(env, zero),
            "plain": plain_loop(instance, env.config),
            "trainer": lambda: trainer.train(interval),
        },
        reps,
    )
    return {
        "env_step_s": t["env"],
        "plain_loop_s": t["plain"],
        "trainer_train_s": t["trainer"],
        "env_overhead": t["env"] / t["plain"],
        "env_overhead_vs_trainer": t["env"] / t["trainer"],
    }


def scaling(reps: int, sizes: tuple[int, ...] = (1, 2, 4, 8, 16)) -> dict[str, float]:
    envs = {}
    for n in sizes:
        envs[n] = seeded_vec_env(n)

    def stepper(n: int) -> Callable[[], None]:
        zero = np.zeros((n, *envs[n].action_space.shape), np.float32)
        return lambda: envs[n].step(zero)

    t = interleaved({str(n): stepper(n) for n in sizes}, reps)
    per_run, fixed = np.polyfit(np.array(sizes, float), np.array([t[str(n)] for n in sizes]), 1)
    return {"scaling_fixed_ms": 1000 * fixed, "scaling_per_run_ms": 1000 * per_run}


def thread_effect(n: int, reps: int) -> dict[str, float]:
    """Step time with 2 torch threads over 1, for one single env and one N-run VecEnv."""
    if (os.cpu_count() or 1) < 2:
        return {}
    single = CurriculumEnv(**ENV_KW)
    single.reset(seed=0)
    vec = seeded_vec_env(n)
    zero = np.zeros((n, *vec.action_space.shape), np.float32)

    def with_threads(count: int, fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            torch.set_num_threads(count)
            fn()

        return run

    before = torch.get_num_threads()
    try:
        t = interleaved(
            {
                f"{name}{count}": with_threads(count, fn)
                for count in (1, 2)
                for name, fn in (
                    ("single", lambda: step_single(single, zero[0])),
                    ("batched", lambda: vec.step(zero)),
                )
            },
            reps,
        )
    finally:
        torch.set_num_threads(before)
    return {
        "two_threads_single": t["single2"] / t["single1"],
        "two_threads_batched": t["batched2"] / t["batched1"],
    }


def bmm_vs_vmap(n: int, reps: int) -> dict[str, float]:
    env = CurriculumEnv(**ENV_KW)
    env.reset(seed=1)
    instance = env._core.trainer.instances[0]
    body = instance.body

    def sequential() -> nn.Module:
        dims = (body.in_dim, *body.hidden)
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(dims):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return nn.Sequential(*layers)

    vmapped = type(instance)(
        instance.name,
        instance.tasks,
        instance.data,
        ModuleBody(sequential, body.out_dim),
        instance.input_shape,
    )
    config = TrainerConfig(device="cpu")
    bmm = BatchedMultitaskTrainer([instance] * n, list(range(n)), config)
    vm = BatchedMultitaskTrainer([vmapped] * n, list(range(n)), config)
    t = interleaved({"bmm": lambda: bmm.train(25), "vmap": lambda: vm.train(25)}, reps)
    return {
        "bmm_train_s": t["bmm"],
        "vmap_train_s": t["vmap"],
        "bmm_speedup_over_vmap": t["vmap"] / t["bmm"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=7, help="interleaved repetitions per figure")
    parser.add_argument("--runs", type=int, default=16, help="N for the batched figures")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object as the last line"
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    result = {
        **batched_vs_separate(args.runs, args.reps),
        **env_vs_plain_loop(args.reps * 3),
        **scaling(args.reps),
        **bmm_vs_vmap(args.runs, args.reps),
        **thread_effect(args.runs, args.reps * 2),
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor()} torch {torch.__version__}",
    }
    for key, value in result.items():
        print(f"{key:>30}: {value:.4g}" if isinstance(value, float) else f"{key:>30}: {value}")
    if args.json:
        print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
