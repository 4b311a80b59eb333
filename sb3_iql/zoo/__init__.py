"""
IQL in the RL Zoo (``rl_zoo3``): ``python -m sb3_iql.zoo train|enjoy|...`` registers IQL under ``--algo iql`` and
hands over to the Zoo's own command line.

The Zoo builds a model from a hyperparameter file, then calls ``learn(n_timesteps)``. ``ZooIQL`` makes the offline
phase part of that recipe: its ``offline_dataset`` and ``offline_steps`` hyperparameters train offline on the first
``learn()``, which then finetunes online for ``n_timesteps`` as any Zoo agent trains. The Zoo's algorithm table is a
dict fixed in its code (``rl_zoo3.utils.ALGOS``, and ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER`` for Optuna), so
``register`` adds IQL to both before the Zoo parses its arguments; an upstream entry point group for algorithms
(the Zoo reading ``importlib.metadata.entry_points(group="rl_zoo3.algos")``) would make this module unnecessary.

The tasks sb3-iql builds data for are gym ids here (``sb3-iql-antmaze-umaze-v1``, ``sb3-iql-pen-binary-v1``, ...):
each is the env its dataset's runs finetune and are evaluated in (for AntMaze, the paper's terminating maze), made
from the local Minari dataset (``sb3_iql.datasets build ...`` first; ``env_kwargs: {dataset: ...}`` picks another).
"""

import sys
from pathlib import Path
from typing import Any

import gymnasium as gym

from sb3_iql.common.wrappers import RecordSuccess
from sb3_iql.data.goals import evaluation_env
from sb3_iql.data.readers import load_minari_dataset
from sb3_iql.datasets.adroit import BINARY_TASKS, binary_dataset_id
from sb3_iql.iql.hyperparameters import infer_domain, paper_hyperparameters
from sb3_iql.iql.iql import IQL

#: The hyperparameter file shipped with the package (the paper's finetuning presets, one entry per task).
HYPERPARAMS = Path(__file__).parent / "hyperparams" / "iql.yml"
#: The datasets of the paper's finetuning tasks (Table 2) that ``sb3_iql.datasets`` builds.
FINETUNE_DATASETS = tuple(
    [f"sb3-iql/antmaze/{name}-v1" for name in ("umaze", "umaze-diverse", "medium-play", "medium-diverse")]
    + [f"sb3-iql/antmaze/{name}-v1" for name in ("large-play", "large-diverse")]
    + [binary_dataset_id(task) for task in BINARY_TASKS]
)


class ZooIQL(IQL):
    """
    ``IQL`` whose offline phase is part of its hyperparameters, for the Zoo: the first ``learn()`` trains
    ``offline_steps`` gradient steps on ``offline_dataset``, then trains online as ``IQL.learn`` does. A model
    loaded to go on training (the Zoo's ``-i``) does not train offline again.

    :param offline_dataset: What ``learn_offline`` takes (a Minari id, ...); None: online only
    :param offline_steps: Offline gradient steps
    :param kwargs: ``IQL``'s parameters
    """

    def __init__(self, *args: Any, offline_dataset: str | None = None, offline_steps: int = 0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.offline_dataset, self.offline_steps, self.offline_done = offline_dataset, offline_steps, False

    def learn(self, total_timesteps: int, *args: Any, **kwargs: Any) -> "ZooIQL":  # type: ignore[override]
        if self.offline_dataset is not None and self.offline_steps > 0 and not self.offline_done:
            self.learn_offline(self.offline_dataset, self.offline_steps, progress_bar=kwargs.get("progress_bar", False))
            self.offline_done = True
            self.num_timesteps = 0  # the Zoo's n_timesteps are online steps
        return super().learn(total_timesteps, *args, **kwargs)


def make_task_env(dataset: str) -> gym.Env:
    """
    :param dataset: A local Minari dataset id
    :return: The env its runs finetune and are evaluated in, reporting ``info["is_success"]``
    """
    env, _ = evaluation_env(load_minari_dataset(dataset))
    return RecordSuccess(env)


def task_env_id(dataset: str) -> str:
    """``sb3-iql/antmaze/umaze-v1`` -> ``sb3-iql-antmaze-umaze-v1``: a gym id without a namespace (the Zoo makes
    folders of env ids)."""
    return dataset.replace("/", "-")


def register_task_envs() -> None:
    """Register a gym id for each task sb3-iql builds data for (``task_env_id``)."""
    for dataset in FINETUNE_DATASETS:
        if task_env_id(dataset) not in gym.registry:
            gym.register(task_env_id(dataset), entry_point=make_task_env, kwargs={"dataset": dataset})


def sample_iql_params(trial: Any, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """The Zoo's Optuna sampler for IQL: the paper's sensitive settings (expectile, temperature) and the lr."""
    return {
        "expectile": trial.suggest_categorical("expectile", [0.5, 0.7, 0.8, 0.9]),
        "beta": trial.suggest_categorical("beta", [0.5, 1.0, 3.0, 10.0]),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-3, log=True),
    }


def register() -> None:
    """Add IQL to the Zoo's algorithm and Optuna sampler tables, and the task envs to gym's registry."""
    try:
        from rl_zoo3 import ALGOS
        from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER
    except ImportError as error:
        raise ImportError("The RL Zoo is not installed: pip install 'sb3-iql[zoo]' (rl_zoo3).") from error
    ALGOS["iql"] = ZooIQL
    HYPERPARAMS_SAMPLER["iql"] = sample_iql_params
    register_task_envs()


def zoo_hyperparameters() -> dict[str, dict[str, Any]]:
    """The shipped file's content: the paper's finetuning presets for each task, in the Zoo's format."""
    entries = {}
    for dataset in FINETUNE_DATASETS:
        preset = paper_hyperparameters(infer_domain(dataset, finetune=True))
        policy_kwargs = preset.pop("policy_kwargs")
        arguments = ", ".join(f"{key}={value!r}" for key, value in policy_kwargs.items())
        entries[task_env_id(dataset)] = {
            "n_timesteps": 1_000_000,
            "policy": "MultiInputPolicy" if "antmaze" in dataset else "MlpPolicy",
            "offline_dataset": dataset,
            "offline_steps": 1_000_000,
            **preset,
            "policy_kwargs": f"dict({arguments})",
        }
    return entries


def main(argv: list[str] | None = None) -> None:
    """``python -m sb3_iql.zoo <train|enjoy|...> ...``: the Zoo's command line with IQL in it; ``train --algo iql``
    reads the shipped hyperparameter file unless given ``--conf-file``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    register()
    if argv[:1] == ["train"] and "iql" in argv and not {"--conf-file", "-conf"} & set(argv):
        argv += ["--conf-file", str(HYPERPARAMS)]
    sys.argv = [f"{sys.argv[0]} {argv[0]}" if argv else sys.argv[0], *argv[1:]]
    if argv[:1] == ["train"]:
        from rl_zoo3.train import train

        train()
    elif argv[:1] == ["enjoy"]:
        from rl_zoo3.enjoy import enjoy

        enjoy()
    else:  # the Zoo's other scripts (its plots need rl_zoo3[plots])
        from rl_zoo3.cli import main as zoo_main

        sys.argv = [sys.argv[0], *argv]
        zoo_main()


def write_hyperparameters(path: Path = HYPERPARAMS) -> None:
    """Write the shipped hyperparameter file from the presets (``zoo_hyperparameters``)."""
    import yaml

    header = (
        "# IQL in the RL Zoo: the paper's finetuning presets (sb3_iql.iql.hyperparameters), one entry per task env.\n"
        '# Written by `python -c "import sb3_iql.zoo as z; z.write_hyperparameters()"`; tests/test_zoo.py checks it.\n'
    )
    path.write_text(header + yaml.safe_dump(zoo_hyperparameters(), sort_keys=False))
