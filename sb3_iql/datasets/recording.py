"""Write episodes as local Minari datasets, atomically, and find the real source files."""

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np
from minari.data_collector.episode_buffer import EpisodeBuffer
from minari.dataset.minari_dataset import parse_dataset_id
from minari.namespace import create_namespace, list_local_namespaces
from minari.storage import get_dataset_path

#: Where builders look for the real D4RL/AWAC files unless told otherwise.
SHARED_DATA_ENV = "SB3_IQL_SHARED_DATA"


def shared_data_dir() -> Path:
    """
    :return: The folder of real source data: ``$SB3_IQL_SHARED_DATA``, else ``../shared/data``
        beside the current directory or beside the sb3-iql checkout.
    """
    if SHARED_DATA_ENV in os.environ:
        return Path(os.environ[SHARED_DATA_ENV])
    candidates = [Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[3] / "shared" / "data"]
    return next((path for path in candidates if path.is_dir()), candidates[0])


def source_file(path: str | Path | None, default_relative: str) -> Path:
    """
    :param path: A source file given by the user, or None for the default under ``shared_data_dir()``
    :param default_relative: The file's default path relative to the shared data folder
    :return: The path, checked to exist
    """
    resolved = Path(path) if path is not None else shared_data_dir() / default_relative
    if not resolved.is_file():
        raise FileNotFoundError(
            f"Source file {resolved} not found. Pass its path (--source) or set {SHARED_DATA_ENV} to the folder "
            f"that holds '{default_relative}'."
        )
    return resolved


def check_episode(episode: EpisodeBuffer, env: gym.Env, name: str) -> None:
    """Raise a ValueError unless the episode's arrays fit the env's spaces and each other."""
    n_steps = len(episode.actions)
    observations = episode.observations if isinstance(episode.observations, dict) else {"": episode.observations}
    spaces = (
        env.observation_space.spaces if isinstance(env.observation_space, gym.spaces.Dict) else {"": env.observation_space}
    )
    if set(observations) != set(spaces):
        raise ValueError(f"{name}: observation keys {sorted(observations)} do not match the env's {sorted(spaces)}.")
    for key, space in spaces.items():
        if np.shape(observations[key]) != (n_steps + 1, *space.shape):
            raise ValueError(
                f"{name}: observations{'[' + key + ']' if key else ''} have shape {np.shape(observations[key])}; "
                f"{env.spec.id if env.spec else 'the env'} needs ({n_steps + 1}, *{space.shape})."
            )
    if np.shape(episode.actions)[1:] != env.action_space.shape:
        raise ValueError(
            f"{name}: actions have shape {np.shape(episode.actions)[1:]}; the env needs {env.action_space.shape}."
        )
    for field in ("rewards", "terminations", "truncations"):
        if len(getattr(episode, field)) != n_steps:
            raise ValueError(f"{name}: {n_steps} actions but {len(getattr(episode, field))} {field}.")


@contextmanager
def minari_root(root: Path) -> Iterator[None]:
    """Point Minari at another datasets folder for the duration of the block."""
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


def write_dataset(
    dataset_id: str,
    episodes: list[EpisodeBuffer],
    env: gym.Env,
    ref_min_score: float | None = None,
    ref_max_score: float | None = None,
    description: str = "",
    algorithm_name: str = "",
    overwrite: bool = False,
    eval_env: gym.Env | gym.envs.registration.EnvSpec | None = None,
    expert_policy: Callable | None = None,
    reference_episodes: int = 100,
) -> minari.MinariDataset:
    """
    Write ``episodes`` as the local Minari dataset ``dataset_id``.

    The dataset is written under a temporary folder and moved into place only once complete, so an
    interrupted or failed build never leaves a half-written dataset under ``dataset_id``.

    :param dataset_id: The Minari id, ``namespace/name-vN``
    :param episodes: The episodes
    :param env: The env of the data: its spec (wrappers included) is what ``recover_environment()`` makes
    :param ref_min_score: Return that normalizes to 0 (None: Minari's, random actions in the evaluation env)
    :param ref_max_score: Return that normalizes to 100 (Minari's normalization gives 1; None: Minari's,
        ``expert_policy``'s mean return in the evaluation env)
    :param description: The recipe, stored as the dataset description
    :param algorithm_name: What produced the data
    :param overwrite: Replace an existing dataset with this id
    :param eval_env: The evaluation env or spec, where it differs from ``env``
    :param expert_policy: The policy whose mean return Minari takes as ``ref_max_score`` where none is given
    :param reference_episodes: Episodes Minari averages for each reference score it computes
    :return: The dataset, loaded from its final place
    """
    if not episodes:
        raise ValueError(f"No episodes to write for '{dataset_id}'.")
    for index, episode in enumerate(episodes):
        check_episode(episode, env, f"'{dataset_id}' episode {index}")
    final_path = get_dataset_path(dataset_id)
    if final_path.exists() and not overwrite:
        raise FileExistsError(f"Dataset '{dataset_id}' already exists at {final_path}; pass overwrite=True (--overwrite).")
    datasets_root = get_dataset_path()
    datasets_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".sb3-iql-build-", dir=datasets_root) as build_root:
        with minari_root(Path(build_root)):
            minari.create_dataset_from_buffers(
                dataset_id,
                episodes,
                env=env,
                algorithm_name=algorithm_name,
                author="sb3-iql dataset builders",
                author_email="sb3-iql@users.noreply.github.com",
                code_permalink="https://github.com/sb3-iql/sb3-iql/tree/main/sb3_iql/datasets",
                ref_min_score=ref_min_score,
                ref_max_score=ref_max_score,
                description=description,
                eval_env=env if eval_env is None else eval_env,  # said, so Minari does not warn that it assumes so
                expert_policy=expert_policy,
                num_episodes_average_score=reference_episodes,
            )
            built_path = get_dataset_path(dataset_id)
        # Minari makes the namespace (and its metadata file) on first use; do that in the real root too.
        namespace = parse_dataset_id(dataset_id)[0]
        if namespace is not None and namespace not in list_local_namespaces():
            create_namespace(namespace)
        if final_path.exists():
            shutil.rmtree(final_path)
        final_path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(built_path, final_path)
    return minari.load_dataset(dataset_id)
