"""IQL in the RL Zoo, with the real ``rl_zoo3``: train (offline, then online) -> enjoy -> a 2-trial Optuna search."""

import os
import subprocess
import sys

import pytest
import yaml

pytest.importorskip("rl_zoo3", reason="the RL Zoo is an optional extra: pip install 'sb3-iql[zoo]'")

from sb3_iql.zoo import HYPERPARAMS, ZooIQL, zoo_hyperparameters

TINY = {
    "Pendulum-v1": {
        "n_timesteps": 30,
        "policy": "MlpPolicy",
        "offline_dataset": "tests/pendulum/random-v0",
        "offline_steps": 20,
        "batch_size": 32,
        "policy_kwargs": "dict(net_arch=[32, 32])",
    }
}


def zoo(tmp_path, *arguments: str) -> str:
    """Run ``python -m sb3_iql.zoo ...`` in ``tmp_path``; return its output (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-m", "sb3_iql.zoo", *arguments, "--device", "cpu"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_the_shipped_hyperparameters_are_the_paper_presets():
    shipped = yaml.safe_load(HYPERPARAMS.read_text())
    assert shipped == zoo_hyperparameters()
    assert shipped["sb3-iql-antmaze-umaze-v1"]["expectile"] == 0.9
    assert shipped["sb3-iql-pen-binary-v1"]["offline_dataset"] == "sb3-iql/pen/binary-v1"


def test_train_enjoy_and_search_through_the_zoo(tmp_path, pendulum_dataset):
    (tmp_path / "iql.yml").write_text(yaml.safe_dump(TINY))
    common = ["--algo", "iql", "--env", "Pendulum-v1", "-f", "logs", "--eval-episodes", "1"]
    trained = zoo(tmp_path, "train", *common, "--conf-file", "iql.yml", "--eval-freq", "10", "--seed", "0")
    model_path = tmp_path / "logs" / "iql" / "Pendulum-v1_1" / "Pendulum-v1.zip"
    assert model_path.exists(), trained[-2000:]
    model = ZooIQL.load(model_path, device="cpu")
    assert model.offline_done and model.offline_datasets == ["tests/pendulum/random-v0"]
    assert model.num_timesteps == 30 and model._n_updates == 20 + 30  # offline steps, then one per online step

    played = zoo(
        tmp_path, "enjoy", "--algo", "iql", "--env", "Pendulum-v1", "-f", "logs", "--exp-id", "1", "-n", "200", "--no-render"
    )
    assert "Mean reward" in played

    search = zoo(
        tmp_path, "train", *common, "--conf-file", "iql.yml", "-optimize", "--n-trials", "2", "--n-jobs", "1",
        "--sampler", "random", "--pruner", "none", "--n-evaluations", "1", "-n", "30",
    )  # fmt: skip
    assert "Number of finished trials:  2" in search and "expectile" in search
