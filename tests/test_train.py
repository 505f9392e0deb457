"""PPO training: config parsing, a tiny run, resuming, the CLI, the own-loop API."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import curriculum_rl
from curriculum_rl.agents.checkpoints import load_model
from curriculum_rl.agents.config import TrainConfig, config_from_dict, load_config
from curriculum_rl.agents.train import make_env, make_model, train
from curriculum_rl.cli import main
from curriculum_rl.controllers.actions import action_transform
from curriculum_rl.controllers.learned.artifact import save_artifact
from curriculum_rl.session import CurriculumSession
from curriculum_rl.suites import resolve_suite

ROOT = Path(__file__).resolve().parent.parent

TINY = {
    "env": {"budget": 50, "interval": 25, "trainer": {"device": "cpu"}},
    "ppo": {"n_steps": 4, "batch_size": 8, "n_epochs": 2},
    "train": {"n_envs": 2, "total_timesteps": 16, "checkpoint_every": 8},
    "eval": {"seeds": 2, "every": 8},
}


def _tiny(total: int = 16) -> TrainConfig:
    config = config_from_dict(TINY)
    return replace(config, train=replace(config.train, total_timesteps=total))


def test_linear_lr_schedule_decays_to_zero_over_the_run():
    config = config_from_dict({**TINY, "ppo": {**TINY["ppo"], "lr_schedule": "linear"}})
    env = make_env(config)
    try:
        model = make_model(config, env)
        rate = config.ppo.learning_rate
        assert model.lr_schedule(1.0) == pytest.approx(rate)
        assert model.lr_schedule(0.25) == pytest.approx(rate / 4)
        constant = make_model(_tiny(), env)
        assert constant.lr_schedule(0.25) == pytest.approx(rate)
    finally:
        env.close()


def test_shipped_config_parses_and_is_packaged():
    config = load_config(ROOT / "agents" / "default.toml")
    assert config.env.suite == "envs/train-broad.toml" and config.train.n_envs == 16
    assert config.env.action == "error_power" and config.env.reward == "error"
    assert config.ppo.n_steps * config.env.interval == config.env.budget  # whole episodes
    # The packaged file is the same bytes (tests/test_packaging.py); load_config() reads it.
    assert load_config() == config


def test_the_shipped_policy_records_the_shipped_recipe():
    """agents/default.json was trained by agents/default.toml: a changed recipe must ship a
    retrained policy (or move the old recipe aside)."""
    metadata = json.loads((ROOT / "agents" / "default.json").read_text())
    assert config_from_dict(metadata["training"]) == load_config(ROOT / "agents" / "default.toml")


def test_with_classes_experiment_config_trains_on_classification_tasks(monkeypatch):
    monkeypatch.chdir(ROOT)  # its suite path is relative to the repository root
    config = load_config(ROOT / "agents" / "with-classes.toml")
    default = load_config(ROOT / "agents" / "synthetic.toml")
    as_default = replace(
        config,
        env=replace(config.env, suite="synthetic", emphasis_cost=default.env.emphasis_cost),
        eval=default.eval,
        train=default.train,
    )
    # only the distribution differs, and what the shipped recipe changed since (price, length)
    assert as_default == default
    suite = resolve_suite(config.env.suite)
    kinds = {t.kind for seed in range(20) for t in suite.sample(seed).tasks}
    assert kinds == {"regression", "classification"}


def test_wide_eval_config_is_the_shipped_recipe_with_sequence_in_eval():
    config = load_config(ROOT / "agents" / "wide-eval.toml")
    default = load_config(ROOT / "agents" / "default.toml")
    assert list(config.eval.suites) == [*default.eval.suites, "sequence"]
    assert replace(config, eval=default.eval) == default


def test_wide_config_is_the_shipped_recipe_on_the_wide_distribution_without_eval():
    config = load_config(ROOT / "agents" / "wide.toml")
    default = load_config(ROOT / "agents" / "default.toml")
    assert config.env.suite == "envs/train-wide.toml" and config.env.max_tasks == 16
    assert config.eval.every == 0
    as_default = replace(
        config,
        env=replace(config.env, suite=default.env.suite, max_tasks=default.env.max_tasks),
        eval=default.eval,
    )
    assert as_default == default


@pytest.mark.parametrize(
    ("recipe", "action"),
    [("weights", "error_power_weights"), ("exponents", "error_exponents")],
)
def test_action_recipes_are_the_shipped_recipe_with_another_action(recipe, action):
    config = load_config(ROOT / "agents" / f"{recipe}.toml")
    default = load_config(ROOT / "agents" / "default.toml")
    assert config.env.action == action and config.eval.every == 0
    assert replace(config, env=replace(config.env, action="error_power"), eval=default.eval) == (
        default
    )


def test_safe_recipe_is_the_shipped_recipe_with_a_shadow_and_a_worst_task_price():
    config = load_config(ROOT / "agents" / "safe.toml")
    default = load_config(ROOT / "agents" / "default.toml")
    assert config.env.shadow and config.env.worst_task_cost == 0.5 and config.eval.every == 0
    env = replace(config.env, shadow=False, worst_task_cost=0.0)
    assert replace(config, env=env, eval=default.eval) == default


def test_gate_recipe_fine_tunes_v3_with_a_learned_gate_beside_two_mixes():
    config = load_config(ROOT / "agents" / "gate-finetune.toml")
    assert config.env.action == "error_power_gate" and config.eval.every == 0
    assert config.train.init_policy == "runs/cands/v3-gate-init.json"
    assert [(m.suite, m.n_envs) for m in config.train.mix] == [
        ("envs/train-raw-aux.toml", 4),
        ("envs/train-sequences.toml", 4),
    ]
    raw = resolve_suite("envs/train-raw-aux.toml")
    instances = [raw.sample(seed) for seed in range(40)]
    assert max(i.num_tasks for i in instances) <= config.env.max_tasks
    assert all(any(t.auxiliary for t in i.tasks) for i in instances)


@pytest.mark.slow
def test_wide_training_distribution_reaches_sixteen_tasks_and_raw_scales_to_ten_thousand():
    wide = resolve_suite("envs/train-wide.toml")
    broad = resolve_suite("envs/train-broad.toml")
    counts = {wide.sample(seed).num_tasks for seed in range(400)}
    assert max(counts) == 16 and min(counts) == 2
    by_name = {s.name: s for s in wide.settings}
    assert by_name["raw"].raw_scale == (1.0, 10000.0)
    assert by_name["scales"].scale_spread == (30.0, 1000.0)
    same = {"raw", "scales", "many", "auxiliary"}
    assert [s for s in wide.settings if s.name not in same] == [
        s for s in broad.settings if s.name not in same
    ]


def test_rule_price_config_is_wide_eval_with_a_price_and_half_the_length():
    config = load_config(ROOT / "agents" / "rule-price.toml")
    wide = load_config(ROOT / "agents" / "wide-eval.toml")
    assert config.env.emphasis_cost > 0 and config.env.action == "error_power"
    assert config.train.total_timesteps == wide.train.total_timesteps // 2
    as_wide = replace(
        config,
        env=replace(config.env, emphasis_cost=wide.env.emphasis_cost),
        train=replace(config.train, total_timesteps=wide.train.total_timesteps),
    )
    assert as_wide == wide


def test_ablation_config_is_the_shipped_recipe_with_two_features_ignored():
    config = load_config(ROOT / "agents" / "ablate-loss-level.toml")
    default = load_config(ROOT / "agents" / "synthetic.toml")
    assert config.policy.ignore_features == ("log_train_centred", "log_val_centred")
    assert config.env.emphasis_cost == 0.0  # as run
    as_default = replace(
        config,
        policy=default.policy,
        env=replace(config.env, emphasis_cost=default.env.emphasis_cost),
        train=default.train,
    )
    assert as_default == default


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"ppo": {"learning_rat": 1e-3}},
            "config: ppo: unknown key 'learning_rat'; did you mean 'learning_rate'",
        ),
        ({"ppo": {"n_steps": "40"}}, "n_steps must be an integer"),
        ({"ppo": {"lr_schedule": "cosine"}}, "lr_schedule must be 'constant' or 'linear'"),
        ({"env": {"trainer": {"lr": "fast"}}}, "config: env: trainer: lr must be a number"),
        ({"policy": {"activation": "sigmoid"}}, "unknown activation"),
        ({"envs": {}}, "unknown key 'envs'"),
        ({"env": {"budget": 1000, "interval": 30}}, "multiple of interval"),
    ],
)
def test_config_errors_name_the_problem(data, message):
    with pytest.raises(ValueError, match=message):
        config_from_dict(data)


def test_train_resumes_the_same_run(tmp_path: Path):
    first = train(_tiny(16), tmp_path, progress=False, log=lambda _: None)
    assert first.timesteps == 16 and first.policy.is_file()
    saved_opt = first.model.policy.optimizer.state_dict()
    saved_params = [p.detach().clone() for p in first.model.policy.parameters()]

    config = _tiny(32)
    loaded = load_model(config, tmp_path, make_env(config))
    assert loaded.num_timesteps == 16
    opt = loaded.policy.optimizer.state_dict()
    assert opt["param_groups"] == saved_opt["param_groups"]
    for key, state in saved_opt["state"].items():
        for name, value in state.items():
            torch.testing.assert_close(opt["state"][key][name], value)
    assert int(saved_opt["state"][0]["step"]) > 0  # a used optimizer, not a fresh one
    for p, q in zip(loaded.policy.parameters(), saved_params, strict=True):
        torch.testing.assert_close(p.detach(), q)

    second = train(config, tmp_path, resume=True, progress=False, log=lambda _: None)
    assert second.timesteps == 32
    with (tmp_path / "episodes.csv").open() as f:
        steps = [int(r["timesteps"]) for r in csv.DictReader(f)]
    assert steps == sorted(steps) and steps[-1] == 32 and steps[0] <= 16
    assert (tmp_path / "progress-16.csv").is_file() and (tmp_path / "learning_curve.png").is_file()
    assert any((tmp_path / "tb").iterdir())

    with pytest.raises(ValueError, match="already holds a training run"):
        train(config, tmp_path, progress=False)
    changed = replace(config, ppo=replace(config.ppo, learning_rate=5e-4))
    with pytest.raises(ValueError, match="learning_rate differs"):
        train(changed, tmp_path, resume=True, progress=False)


def test_train_closes_its_progress_files_and_leaves_the_model_a_silent_logger(
    tmp_path: Path, monkeypatch
):
    from stable_baselines3.common.logger import CSVOutputFormat, Logger

    import curriculum_rl.agents.train as train_module

    made: list[Logger] = []

    class Recording(Logger):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(train_module, "Logger", Recording)
    result = train(_tiny(16), tmp_path, progress=False, log=lambda _: None)
    files = [f for lg in made for f in lg.output_formats if isinstance(f, CSVOutputFormat)]
    assert files and all(f.file.closed for f in files)
    assert result.model.logger.output_formats == []
    rows = list(csv.DictReader((tmp_path / "progress-0.csv").open()))
    assert rows  # closed after it was written, not before


def test_eval_reports_each_suite_of_a_multi_suite_file(tmp_path: Path):
    suites = tmp_path / "val.toml"
    suites.write_text(
        '[suites.few]\nkind = "synthetic"\n[[suites.few.settings]]\nname = "two"\n'
        "num_tasks = [2, 2]\n"
        '[suites.many]\nkind = "synthetic"\n[[suites.many.settings]]\nname = "four"\n'
        "num_tasks = [4, 4]\n"
    )
    config = _tiny(8)
    config = replace(config, eval=replace(config.eval, suites=[str(suites), "synthetic"]))
    result = train(config, tmp_path / "run", progress=False, log=lambda _: None)
    (row,) = result.evaluations
    labels = [f"{suites}#few", f"{suites}#many", "synthetic"]
    assert all(f"{label}/gain" in row for label in labels)
    assert row[f"{suites}#few/gain"] != row[f"{suites}#many/gain"]


def test_cli_train_writes_a_loadable_policy(tmp_path: Path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(
        "[env]\nbudget = 50\ninterval = 25\n[env.trainer]\ndevice = 'cpu'\n"
        "[ppo]\nn_steps = 4\nbatch_size = 8\nn_epochs = 1\n"
        "[train]\nn_envs = 2\ntotal_timesteps = 8\n[eval]\nevery = 0\n"
    )
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(out), "--quiet", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["timesteps"] == 8
    controller = curriculum_rl.load_controller(result["policy"])
    assert controller.max_tasks == 8
    assert main(["run", "--controller", result["policy"], "--budget", "50", "--quiet"]) == 0

    other = tmp_path / "seed3"
    assert (
        main(["train", "--config", str(config), "--out", str(other), "--quiet", "--seed", "3"]) == 0
    )
    assert json.loads((other / "config.json").read_text())["train"]["seed"] == 3
    assert json.loads((out / "config.json").read_text())["train"]["seed"] != 3
    first, second = (torch.load(o / "policy.pt", weights_only=True) for o in (out, other))
    assert any(not torch.equal(first[k], second[k]) for k in first)
    capsys.readouterr()
    assert main(["train", "--out", str(other), "--resume", "--seed", "4", "--quiet"]) != 0
    assert "[train] seed differs (3 there, 4 here)" in capsys.readouterr().err


def test_session_drives_a_user_loop():
    session = CurriculumSession(curriculum_rl.load_controller("uniform"), num_tasks=3, budget=100)
    w, p = session.update(torch.tensor([1.0, 10.0, 100.0]))
    assert isinstance(w, torch.Tensor) and torch.allclose(w, torch.ones(3))
    torch.testing.assert_close(p, torch.full((3,), 1 / 3))
    w, p = session.update(
        np.array([0.9, 9.0, 90.0]), np.array([1.0, 9.5, 95.0]), task_grads=torch.randn(3, 20)
    )
    assert isinstance(w, np.ndarray) and w.shape == (3,)
    with pytest.raises(ValueError, match="shape"):
        session.update(torch.ones(4))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_session_with_a_learned_policy(tmp_path: Path):
    from curriculum_rl.controllers.learned.artifact import save_artifact
    from curriculum_rl.controllers.learned.network import NetworkConfig, TaskSetActor, init_weights

    actor = TaskSetActor(NetworkConfig(action_init_gain=1.0))
    init_weights(actor)
    path = save_artifact(tmp_path / "p", actor, max_tasks=8, action="error_power")
    session = CurriculumSession(
        curriculum_rl.load_controller(path),
        num_tasks=5,
        budget=200,
        train_sizes=[100, 100, 50, 10, 1000],
    )
    for step in range(0, 200, 25):
        losses = torch.rand(5) + 0.1
        w, p = session.update(losses, losses * 1.1, task_grads=torch.randn(5, 7), step=step)
        assert w.shape == (5,) and abs(w.mean().item() - 1) < 1e-4
        assert abs(p.sum().item() - 1) < 1e-4 and (p > 0).all()


def test_import_stays_light():
    code = (
        "import sys, curriculum_rl; assert 'torch' not in sys.modules; "
        "curriculum_rl.load_controller; assert 'stable_baselines3' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.slow
def test_own_loop_example_runs():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "own_loop.py")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "weights" in result.stdout and "controller default" in result.stdout


def _shipped_policy_gains(suite_name: str, seeds: list[int]) -> np.ndarray:
    """The headline paired gain G_m over uniform (task metrics) of the shipped policy, per seed."""
    from curriculum_rl.controllers.base import Uniform
    from curriculum_rl.runner import run_controller
    from curriculum_rl.scores import score_run
    from curriculum_rl.suites import resolve_suite

    suite = resolve_suite(suite_name)
    instances = [suite.sample(s) for s in seeds]
    uniform = run_controller(instances, seeds, Uniform(), budget=1000, interval=25)
    learned = run_controller(instances, seeds, curriculum_rl.load_controller(), 1000, 25)
    pairs = zip(uniform, learned, strict=True)
    return np.array([score_run(p.to_dict(), u.to_dict()).gain for u, p in pairs])


@pytest.mark.slow
def test_shipped_policy_beats_uniform_on_fresh_synthetic_instances():
    """The pilot check of the shipped policy on 8 synthetic instances never used elsewhere."""
    gains = _shipped_policy_gains("synthetic", list(range(2_000_000, 2_000_008)))
    assert gains.mean() > 0.1, gains


@pytest.mark.slow
def test_shipped_policy_does_not_starve_the_hard_tasks_of_digits():
    """On the validation suite digits an earlier policy lost ~0.3 to uniform on every seed
    by starving the 10-class tasks (benchmarks/RESULTS.md, 3c); the shipped one must stay
    within noise of uniform or above."""
    gains = _shipped_policy_gains("digits", [5, 6, 7])
    assert gains.mean() > -0.1, gains


def test_anchor_kl_needs_an_initial_policy_and_an_entropy_term():
    with pytest.raises(ValueError, match="init_policy"):
        config_from_dict({**TINY, "ppo": {**TINY["ppo"], "anchor_kl": 0.1}})
    with pytest.raises(ValueError, match="ent_coef > 0"):
        config_from_dict({**TINY, "ppo": {**TINY["ppo"], "anchor_kl": 0.1, "ent_coef": 0.0}})
    with pytest.raises(ValueError, match="anchor_kl and anchor_kl_columns must be >= 0"):
        config_from_dict({**TINY, "ppo": {**TINY["ppo"], "anchor_kl": -1.0}})
    with pytest.raises(ValueError, match="init_policy"):
        config_from_dict({**TINY, "ppo": {**TINY["ppo"], "anchor_kl_columns": {"sampling": 1}}})


def test_anchor_kl_columns_price_named_columns_and_reject_unknown_names(tmp_path: Path):
    """[ppo] anchor_kl_columns = {sampling = ...} prices that column of [env] action's
    transform, the rest keep anchor_kl; a name the transform lacks is an error naming the
    valid ones; the model's anchor carries the prices per column."""
    env = make_env(_tiny())
    try:
        start = make_model(_tiny(), env).policy.actor
        policy = save_artifact(tmp_path / "start", start, 8, action="error_power")
        data = {
            **TINY,
            "ppo": {**TINY["ppo"], "anchor_kl": 0.1, "anchor_kl_columns": {"sampling": 2}},
            "train": {**TINY["train"], "init_policy": str(policy)},
        }
        config = config_from_dict(data)
        columns = action_transform(config.env.action).columns
        prices = config.ppo.anchor_prices(columns)
        assert prices == [2.0 if c == "sampling" else 0.1 for c in columns]
        _, per_kl = make_model(config, env).policy._anchor
        torch.testing.assert_close(per_kl, torch.tensor(prices) / config.ppo.ent_coef)
    finally:
        env.close()
    data["ppo"]["anchor_kl_columns"] = {"samplin": 1.0}
    with pytest.raises(ValueError, match=r"names \['samplin'\].*columns are \['weight'"):
        config_from_dict(data)
    data["ppo"]["anchor_kl_columns"] = {"sampling": "high"}
    with pytest.raises(ValueError, match=r"anchor_kl_columns\.sampling must be a number"):
        config_from_dict(data)


@pytest.mark.slow
def test_a_fine_tune_anchored_to_its_start_trains_logs_and_resumes(tmp_path: Path):
    """[ppo] anchor_kl anchors to the init_policy file, also after a resume (not to the
    last checkpoint), and logs the KL it pays."""
    config = _tiny(16)
    env = make_env(config)
    try:
        start = make_model(config, env).policy.actor
        with torch.no_grad():
            start.head.bias.fill_(0.2)
        policy = save_artifact(
            tmp_path / "start", start, config.env.max_tasks, action=config.env.action
        )
    finally:
        env.close()
    anchored = config_from_dict(
        {
            **TINY,
            "ppo": {**TINY["ppo"], "anchor_kl": 0.5},
            "train": {**TINY["train"], "init_policy": str(policy)},
        }
    )
    first = train(anchored, tmp_path / "run", progress=False, log=lambda _: None)
    anchor, coef = first.model.policy._anchor
    torch.testing.assert_close(anchor.head.bias, torch.full_like(anchor.head.bias, 0.2))
    torch.testing.assert_close(coef, torch.full_like(coef, 0.5 / anchored.ppo.ent_coef))
    with (tmp_path / "run" / "progress-0.csv").open() as f:
        kls = [float(r["train/anchor_kl"]) for r in csv.DictReader(f) if r["train/anchor_kl"]]
    assert kls and all(np.isfinite(kls)) and kls[-1] > 0  # PPO moved, the price is paid

    longer = replace(anchored, train=replace(anchored.train, total_timesteps=32))
    second = train(longer, tmp_path / "run", resume=True, progress=False, log=lambda _: None)
    resumed_anchor, _ = second.model.policy._anchor
    for key, value in anchor.state_dict().items():
        torch.testing.assert_close(resumed_anchor.state_dict()[key], value)


@pytest.mark.slow
def test_a_run_saved_before_a_setting_existed_resumes_with_its_default(tmp_path: Path):
    train(_tiny(16), tmp_path, progress=False, log=lambda _: None)
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["ppo"]["anchor_kl"]  # as written by a version without the setting
    (tmp_path / "config.json").write_text(json.dumps(saved))
    resumed = train(_tiny(32), tmp_path, resume=True, progress=False, log=lambda _: None)
    assert resumed.timesteps == 32


@pytest.mark.parametrize("path", sorted((ROOT / "agents").glob("*.toml")), ids=lambda p: p.name)
def test_every_recipe_in_agents_loads_and_names_suites_that_resolve(path):
    """The recipes that RESULTS.md cites stay runnable: a typo in a suite path (training or
    [eval]), or a setting the config no longer accepts, fails here rather than an hour
    into a run."""
    from curriculum_rl.agents.callbacks import eval_suites
    from curriculum_rl.suites import resolve_suite

    config = load_config(path)
    for suite in [config.env.suite, *(m.suite for m in config.train.mix)]:
        assert resolve_suite(suite).name
    # the held-out evaluation resolves its suites as training will
    assert len(eval_suites(config.eval.suites)) >= len(config.eval.suites)
