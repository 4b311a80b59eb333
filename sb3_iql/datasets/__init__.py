"""
Build the IQL paper's datasets, or faithful re-creations of them, as local Minari datasets.

Each recipe writes ordinary Minari datasets under ``$MINARI_DATASETS_PATH`` (Minari's default
otherwise), with reference scores and the evaluation env spec, so ``IQL.learn_offline(id)``,
``minari.load_dataset(id)`` and ``dataset.recover_environment()`` find them. From the shell::

    python -m sb3_iql.datasets list
    python -m sb3_iql.datasets build door-human
    python -m sb3_iql.datasets build pen-binary --size 500
    python -m sb3_iql.datasets build antmaze-umaze
"""

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import gymnasium_robotics
import minari

from sb3_iql.datasets import adroit, antmaze, antmaze_d4rl, discrete, locomotion, maze

gym.register_envs(gymnasium_robotics)


@dataclass(frozen=True)
class Recipe:
    """
    A dataset builder and what it makes.

    :param dataset_ids: The Minari ids it writes
    :param build: The builder
    :param size_parameter: The builder's argument that ``--size`` sets
    :param summary: One line on the recipe
    """

    dataset_ids: tuple[str, ...]
    build: Callable[..., minari.MinariDataset | dict[str, minari.MinariDataset]]
    size_parameter: str
    summary: str


def _recipes() -> dict[str, Recipe]:
    recipes = {
        "door-human": Recipe(
            ("sb3-iql/door/human-v0",), adroit.build_door_human, "", "D4RL door-human-v0 converted from the real file"
        )
    }
    for task in adroit.BINARY_TASKS:
        recipes[f"{task}-binary"] = Recipe(
            (adroit.binary_dataset_id(task),),
            functools.partial(adroit.build_binary, task),
            "n_bc_episodes",
            "AWAC recipe: demonstrations + BC rollouts, reward 0 on success else -1",
        )
    for task in adroit.TASKS:
        recipes[f"{task}-expert"] = Recipe(
            (f"sb3-iql/{task}/expert-v0",),
            functools.partial(adroit.build_expert, task),
            "n_episodes",
            "DAPG expert rollouts, as D4RL's *-expert-v0",
        )
    for maze_name in maze.MAZES:
        for style in maze.STYLES:
            recipes[f"pointmaze-{maze_name}-{style}"] = Recipe(
                (f"sb3-iql/pointmaze/{maze_name}-{style}-v0",),
                functools.partial(maze.build_maze, maze_name, style),
                "n_transitions",
                "AntMaze-style stitching data with the point agent and a waypoint controller",
            )
    for name in antmaze.TASKS:
        recipes[f"antmaze-{name}"] = Recipe(
            (f"sb3-iql/antmaze/{name}-v1",),
            functools.partial(antmaze.build_antmaze, name),
            "n_transitions",
            "Minari's D4RL/antmaze-v1 recipe: BFS waypoints driving sb3-iql's goal-reaching ant, continuing task",
        )
    for name in antmaze_d4rl.TASKS:
        recipes[f"antmaze-d4rl-{name}"] = Recipe(
            (antmaze_d4rl.dataset_id(name),),
            functools.partial(antmaze_d4rl.build_antmaze_d4rl, name),
            "n_transitions",
            "D4RL's AntMaze design and ant (30 N m, 0.1 s steps): one goal per episode, rewards relabelled to the task",
        )
        recipes[f"antmaze-d4rl-{name}-v1"] = Recipe(
            (antmaze_d4rl.dataset_id(name, version=1),),
            functools.partial(antmaze_d4rl.build_antmaze_d4rl, name, version=1),
            "n_transitions",
            "As antmaze-d4rl-*, with D4RL's driving and a controller trained on D4RL's ant acting with its samples",
        )
    for task in discrete.TASKS:
        recipes[f"{task}-mixed"] = Recipe(
            (f"sb3-iql/{task}/mixed-v0",),
            functools.partial(discrete.build_discrete, task),
            "n_transitions",
            "Discrete actions: half the transitions from a good controller, half from a bad one",
        )
    for env_name in locomotion.ENV_IDS:
        recipes[env_name] = Recipe(
            tuple(f"sb3-iql/{env_name}/{level}-v0" for level in locomotion.LEVELS),
            functools.partial(locomotion.build_locomotion, env_name),
            "n_transitions",
            "D4RL recipe with SB3 SAC: random, medium, medium-replay, expert, medium-expert",
        )
    return recipes


RECIPES: dict[str, Recipe] = _recipes()


def build(name: str, size: int | None = None, **kwargs) -> minari.MinariDataset | dict[str, minari.MinariDataset]:
    """
    Build the datasets of recipe ``name``.

    :param name: A recipe name (``RECIPES``), e.g. ``"door-human"``, ``"pen-binary"``, ``"pointmaze-umaze-diverse"``
    :param size: Episodes or transitions, whichever the recipe counts (None: the paper's size)
    :param kwargs: Further builder arguments (``seed``, ``source``, ``train_steps``, ``bc_steps``, ``overwrite``, ...)
    :return: The dataset, or the datasets by level for locomotion
    """
    if name not in RECIPES:
        raise KeyError(f"Unknown dataset recipe '{name}'. Known: {', '.join(RECIPES)}.")
    recipe = RECIPES[name]
    if size is not None:
        if not recipe.size_parameter:
            raise ValueError(f"'{name}' is converted whole from its source file; it takes no size.")
        kwargs[recipe.size_parameter] = size
    accepted = inspect.signature(recipe.build).parameters
    unsupported = sorted(set(kwargs) - set(accepted))
    if unsupported:
        raise TypeError(f"'{name}' does not take {unsupported}; it takes {', '.join(accepted)}.")
    return recipe.build(**kwargs)


__all__ = ["RECIPES", "Recipe", "build"]
