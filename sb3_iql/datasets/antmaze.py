"""
The six AntMaze datasets, built here the way Minari built ``D4RL/antmaze/*-v1``.

Minari's recipe (``minari-dataset-generation-scripts/scripts/antmaze/create_antmaze_dataset.py``):
a waypoint planner over the maze's cells drives a goal-reaching ant with Gaussian action noise
(std 0.2, actions clipped to [-1, 1]) in ``AntMaze_*-v4`` made with ``continuing_task=True,
reset_target=False``, for 1M steps; an episode lasts until the env's time limit (700 steps on
umaze, 1,000 on medium and large), then the env is reset with the next seed. The ant never
terminates: once at the goal it stays there and collects reward 1 a step. Every step records
``infos`` ``success``, ``qpos`` (15), ``qvel`` (14) and ``goal`` (2). The evaluation env spec is
the collection spec with the evaluation map (a fixed ``r`` start and ``g`` goal), and the reference
scores are Minari's: the mean return of the (noise-free) planner and of random actions over 100
episodes in that evaluation env.

Where ours departs: the goal-reaching ant is our own (``ant_controller``: a SAC policy trained here
on the same ant, seeing the target in its heading frame), Minari's was trained for 30M steps and not
published; the planner is a breadth-first search over cells (Minari: Q-iteration; both give shortest
cell paths) and our intermediate waypoints are cell centres with the same small random offset.
"""

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import minari
import numpy as np
from tqdm.auto import tqdm

from sb3_iql.data.episodes import episode_buffer
from sb3_iql.datasets.ant_controller import (
    DATA_ACTION_GAIN,
    DATA_ACTION_NOISE,
    AntController,
    data_controller,
    fell_over,
)
from sb3_iql.datasets.maze import WAYPOINT_JITTER, CellWaypoints
from sb3_iql.datasets.recording import write_dataset
from sb3_iql.tasks.antmaze import EVAL_MAPS, UMAZE_DATA_MAP, paper_task_env
from sb3_iql.tasks.antmaze_d4rl import ant_maze_env_id

D4RL_TRANSITIONS = 1_000_000
REFERENCE_EPISODES = 100


@dataclass(frozen=True)
class AntMazeTask:
    """
    :param env_id: The Gymnasium-Robotics env the data is collected in
    :param maze: umaze, medium or large (its evaluation map)
    :param data_map: The collection map (None: the env's default)
    """

    env_id: str
    maze: str
    data_map: list | None = None


TASKS = {
    "umaze": AntMazeTask("AntMaze_UMaze-v4", "umaze", UMAZE_DATA_MAP),
    "umaze-diverse": AntMazeTask("AntMaze_UMaze-v4", "umaze"),
    "medium-play": AntMazeTask("AntMaze_Medium-v4", "medium"),
    "medium-diverse": AntMazeTask("AntMaze_Medium_Diverse_GR-v4", "medium"),
    "large-play": AntMazeTask("AntMaze_Large-v4", "large"),
    "large-diverse": AntMazeTask("AntMaze_Large_Diverse_GR-v4", "large"),
}


def _task(name: str) -> AntMazeTask:
    if name not in TASKS:
        raise ValueError(f"Unknown AntMaze dataset '{name}': choose one of {', '.join(TASKS)}.")
    return TASKS[name]


def make_collection_env(name: str, ant: str = "gymnasium") -> gym.Env:
    """
    :param ant: ``"gymnasium"``: the maze's own ant (Minari's); ``"d4rl"``: D4RL's (``sb3_iql.tasks.antmaze_d4rl``)
    :return: The env ``antmaze-{name}`` is collected in: continuing, the goal kept when reached
    """
    task = _task(name)
    kwargs = {"maze_map": task.data_map} if task.data_map is not None else {}
    return gym.make(ant_maze_env_id(task.env_id, ant), continuing_task=True, reset_target=False, **kwargs)


def dataset_id(name: str, ant: str = "gymnasium") -> str:
    """:return: The Minari id of ``antmaze-{name}`` with Gymnasium's ant (Minari's), or with D4RL's (``antmaze-d4rl-ant``)."""
    _task(name)
    return f"sb3-iql/antmaze/{name}-v1" if ant == "gymnasium" else f"sb3-iql/antmaze-d4rl-ant/{name}-v1"


def make_eval_env_spec(name: str, ant: str = "gymnasium") -> gym.envs.registration.EnvSpec:
    """:return: The evaluation env spec Minari records: the collection spec with the evaluation map."""
    spec = copy.deepcopy(make_collection_env(name, ant).spec)
    spec.kwargs["maze_map"] = EVAL_MAPS[_task(name).maze]
    return spec


class WaypointAnt:
    """
    Walk the ant to the maze's goal along the shortest path of cells (``CellWaypoints``, or other ``waypoints``): the ant
    controller is given the next waypoint, with Gaussian action noise. Called with AntMaze's Dict observation.

    :param maze_env: The AntMaze env (its ``unwrapped.maze`` gives the geometry)
    :param controller: The goal-reaching ant
    :param noise: Std of the Gaussian action noise
    :param rng: Random generator of the noise and the jitter
    :param jitter: The waypoints' random offset from their cells' centres (``CellWaypoints``)
    :param waypoints: Where to aim from a position on the way to a goal (default: ``CellWaypoints`` with ``jitter``)
    :param sampled: Act with samples of the controller's Gaussian (``AntController.sample``) instead of its mean
    """

    def __init__(
        self,
        maze_env: gym.Env,
        controller: AntController,
        noise: float,
        rng: np.random.Generator,
        jitter: float | np.ndarray = WAYPOINT_JITTER,
        waypoints: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
        sampled: bool = False,
    ):
        self.waypoints = waypoints or CellWaypoints(maze_env.unwrapped.maze, rng, jitter=jitter)
        self.controller = controller
        self.noise = noise
        self.rng = rng
        self.sampled = sampled

    def __call__(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        return self.act(observation["observation"], observation["achieved_goal"], observation["desired_goal"])

    def act(self, ant_state: np.ndarray, position: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """:return: The noisy action toward ``goal`` from ``position`` (``ant_state``: AntMaze's 27-number ``observation``)."""
        waypoint = self.waypoints(position, goal)
        action = self.controller.act(ant_state, position, waypoint, rng=self.rng if self.sampled else None)
        if self.noise:
            action = action + self.noise * self.rng.standard_normal(action.shape)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


def collect(
    name: str,
    n_transitions: int,
    controller: AntController,
    noise: float = DATA_ACTION_NOISE,
    seed: int = 123,
    progress: bool = True,
    ant: str = "gymnasium",
) -> list:
    """
    Drive the ant through ``antmaze-{name}``'s collection env (with ``ant``) for ``n_transitions`` steps.

    Episodes end at the env's time limit (a truncation; the last one where the steps run out);
    each reset takes the next seed, as Minari's script does.
    """
    env = make_collection_env(name, ant)
    rng = np.random.default_rng(seed)
    driver = WaypointAnt(env, controller, noise, rng)
    episodes, collected, episode_seed = [], 0, seed
    with tqdm(total=n_transitions, desc=f"antmaze-{name}", unit="step", disable=not progress) as bar:
        while collected < n_transitions:
            observation, info = env.reset(seed=episode_seed)
            episode_seed += 1
            observations, actions, rewards, truncations = [observation], [], [], []
            infos = [_step_infos(observation, info)]
            truncated = False
            while not truncated and collected + len(actions) < n_transitions:
                action = driver(observation)
                observation, reward, _, truncated, info = env.step(action)
                observations.append(observation)
                actions.append(action)
                rewards.append(float(reward))
                infos.append(_step_infos(observation, info))
                truncations.append(bool(truncated))
            truncations[-1] = True
            episodes.append(episode_buffer(observations, actions, rewards, [False] * len(actions), truncations, infos))
            collected += len(actions)
            bar.update(len(actions))
    env.close()
    return episodes


def planner_success(
    name: str,
    controller: AntController,
    n_episodes: int = 20,
    noise: float = DATA_ACTION_NOISE,
    seed: int = 0,
    ant: str = "gymnasium",
) -> dict[str, float]:
    """
    How well the planner-driven ant does the paper's task in ``antmaze-{name}``'s maze: from the evaluation
    start to the fixed goal within D4RL's time limit (``paper_eval_env``'s task), with the data's action noise.
    This bounds what a dataset can teach: an ant that falls or dawdles here leaves few successes to learn from.

    :return: ``success_rate``, ``fell_over`` (share of episodes the ant ended on its back or belly),
        ``mean_steps`` and ``median_steps`` of the successful episodes
    """
    collection = make_collection_env(name, ant)
    env = paper_task_env(collection)
    collection.close()
    rng = np.random.default_rng(seed)
    return planner_episodes(
        env,
        lambda: WaypointAnt(env, controller, noise, rng),
        lambda observation, _: (observation["observation"], observation["achieved_goal"], observation["desired_goal"]),
        n_episodes,
        seed,
    )


def planner_episodes(
    env: gym.Env,
    new_driver: Callable[[], WaypointAnt],
    ant_position_goal: Callable[[Any, dict], tuple[np.ndarray, np.ndarray, np.ndarray]],
    n_episodes: int,
    seed: int,
) -> dict[str, float]:
    """
    Drive ``env``'s task with a new planner-driven ant each episode (seeds ``seed``, ``seed + 1``, ...), then close ``env``.

    :param ant_position_goal: From an observation and its info: the ant's 27-number state, its ``(x, y)`` and the goal
    :return: ``success_rate``, ``fell_over`` (share of episodes the ant ended on its back or belly),
        ``mean_steps`` and ``median_steps`` of the successful episodes
    """
    successes, steps, fallen = [], [], 0
    for episode in range(n_episodes):
        driver = new_driver()
        observation, info = env.reset(seed=seed + episode)
        terminated = truncated = False
        length = 0
        while not (terminated or truncated):
            observation, _, terminated, truncated, info = env.step(driver.act(*ant_position_goal(observation, info)))
            length += 1
        successes.append(bool(info.get("success", False)))
        steps += [length] if successes[-1] else []
        fallen += int(fell_over(ant_position_goal(observation, info)[0]))
    env.close()
    return {
        "success_rate": float(np.mean(successes)),
        "fell_over": fallen / n_episodes,
        "mean_steps": float(np.mean(steps)) if steps else float("nan"),
        "median_steps": float(np.median(steps)) if steps else float("nan"),
    }


def _step_infos(observation: dict[str, np.ndarray], info: dict) -> dict[str, np.ndarray]:
    """Minari's AntMaze ``infos``: success, and the simulator state to restore it (qpos, qvel) with the goal."""
    return {
        "success": np.bool_(info.get("success", False)),
        "qpos": np.concatenate([observation["achieved_goal"], observation["observation"][:13]]),
        "qvel": observation["observation"][13:].copy(),
        "goal": observation["desired_goal"].copy(),
    }


def build_antmaze(
    name: str,
    n_transitions: int = D4RL_TRANSITIONS,
    noise: float = DATA_ACTION_NOISE,
    seed: int = 123,
    controller_file: str | None = None,
    reference_episodes: int = REFERENCE_EPISODES,
    overwrite: bool = False,
    progress: bool = True,
    action_gain: float | None = None,
    ant: str = "gymnasium",
) -> minari.MinariDataset:
    """
    Build ``sb3-iql/antmaze/{name}-v1`` as Minari built ``D4RL/antmaze/{name}-v1`` (module docstring).

    :param name: umaze, umaze-diverse, medium-play, medium-diverse, large-play or large-diverse
    :param n_transitions: Transitions (Minari: 1M)
    :param noise: Std of the action noise (Minari: 0.2)
    :param seed: Seed of the first reset (Minari: 123), of the noise and of the waypoint jitter
    :param controller_file: A goal-reaching ant controller (default: ``data_controller(ant)``'s)
    :param reference_episodes: Episodes behind each reference score (Minari: 100)
    :param action_gain: Factor on the controller's actions (default: ``data_controller(ant)``'s; Gymnasium's ant:
        ``DATA_ACTION_GAIN``, a gentler gait that rarely falls)
    :param ant: ``"gymnasium"`` (Minari's); ``"d4rl"``: the same recipe on D4RL's ant, written as
        ``sb3-iql/antmaze-d4rl-ant/{name}-v1`` (one cell of the AntMaze 2 x 2: Minari's design, D4RL's ant)
    """
    task = _task(name)
    if controller_file is not None:
        controller = AntController.load(controller_file, gain=DATA_ACTION_GAIN if action_gain is None else action_gain)
    else:
        controller = data_controller(ant, action_gain)
    episodes = collect(name, n_transitions, controller, noise, seed, progress, ant)
    eval_spec = make_eval_env_spec(name, ant)
    eval_env = gym.make(eval_spec)
    planner = WaypointAnt(eval_env, controller, noise=0.0, rng=np.random.default_rng(seed))
    return write_dataset(
        dataset_id(name, ant),
        episodes,
        make_collection_env(name, ant),
        eval_env=eval_spec,
        expert_policy=planner,
        reference_episodes=reference_episodes,
        description=(
            f"Minari's D4RL/antmaze/{name}-v1 recipe rebuilt with sb3-iql's goal-reaching ant: a BFS waypoint planner "
            f"over the cells of {ant_maze_env_id(task.env_id, ant)} (continuing_task=True, reset_target=False) drives "
            f"{'Gymnasium' if ant == 'gymnasium' else 'D4RL'}'s ant (controller "
            f"{Path(controller_file).name if controller_file else ant + ' data controller'}, action scale "
            f"{controller.action_scale:g}, its actions scaled by {controller.gain:g}) with Gaussian action noise {noise}; "
            f"{n_transitions} transitions in episodes of the env's time limit; reward 1 within "
            "0.45 of the goal and no terminations. Evaluation env: the same with the evaluation map (fixed start and "
            "goal). Reference scores: mean return of the noise-free planner and of random actions in it."
        ),
        algorithm_name="BFS waypoints + sb3-iql goal-reaching ant",
        overwrite=overwrite,
    )
