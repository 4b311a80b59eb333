"""
The six AntMaze datasets in D4RL's design and D4RL's physics (``sb3_iql.tasks.antmaze_d4rl``).

D4RL's recipe (``scripts/generation/generate_ant_maze_datasets.py`` and ``relabel_antmaze_rewards.py``), where it
differs from Minari's (``antmaze.py``):

- the ant is D4RL's (30 N m motors, 0.1 s steps), observed as ``qpos[:15] + qvel[:14]`` (29 numbers, no goal);
- one goal per 1,000-step episode, the ant reset between episodes; umaze: every episode starts at ``r`` and aims at
  the evaluation goal (the task itself); play: a random free cell (plus up to 1 m) toward one of the maze's marked
  goal cells; diverse: a random free cell toward any free cell; goals with D4RL's cell noise;
- a breadth-first planner over the cells gives waypoints (cell centres with D4RL's 0-1 m offset) to the goal-reaching
  ant, whose actions get Gaussian noise N(0, 0.2), clipped to [-1, 1];
- rewards and terminals are relabelled against one evaluation goal (D4RL's ``env.target_goal``: the evaluation
  cell with its noise, drawn once from the build's seed): 1 and terminal where the next x-y is within 0.5 of it,
  else 0; the episode goes on after a terminal row, as in D4RL's files.

Each step's ``infos`` hold ``qpos`` (15), ``qvel`` (14) (D4RL's ``infos/qpos``, ``infos/qvel``) and ``goal``, the
episode's commanded goal. The evaluation env spec is the paper's task (``sb3_iql/AntMazeD4RL_*-v0``); reference scores
0 and 1, so the normalized score is 100 x the success rate.

Where ours departs: the goal-reaching ant is ours (D4RL's was not published); our planner keeps a waypoint until the
ant is within 0.45 of it (D4RL's draws the waypoint's offset anew at every step); the maze is D4RL's seen in a
mirror (``sb3_iql.tasks.antmaze_d4rl``).
"""

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np
from tqdm.auto import tqdm

from sb3_iql.data.episodes import episode_buffer
from sb3_iql.datasets.ant_controller import DATA_ACTION_NOISE, AntController, data_controller
from sb3_iql.datasets.antmaze import WaypointAnt, planner_episodes
from sb3_iql.datasets.recording import write_dataset
from sb3_iql.tasks.antmaze_d4rl import (
    D4RL_GOAL_RADIUS,
    DATA_EPISODE_STEPS,
    DATA_MAPS,
    eval_env_id,
)

D4RL_TRANSITIONS = 1_000_000
#: D4RL's waypoint offset, U(0, 1) m toward higher columns and rows, as ``CellWaypoints``' jitter (``centre - U * jitter``;
#: Gymnasium-Robotics' rows run toward -y).
D4RL_WAYPOINT_JITTER = np.array([-1.0, 1.0])


@dataclass(frozen=True)
class D4RLAntMazeTask:
    """
    :param maze: umaze, medium or large
    :param start: ``"fixed"`` (every episode at ``r``) or ``"random"`` (D4RL's multistart)
    :param goals: ``"marked"`` (the data map's ``g`` cells) or ``"any"`` free cell (D4RL's multigoal)
    """

    maze: str
    start: str
    goals: str


TASKS = {
    "umaze": D4RLAntMazeTask("umaze", "fixed", "marked"),
    "umaze-diverse": D4RLAntMazeTask("umaze", "random", "any"),
    "medium-play": D4RLAntMazeTask("medium", "random", "marked"),
    "medium-diverse": D4RLAntMazeTask("medium", "random", "any"),
    "large-play": D4RLAntMazeTask("large", "random", "marked"),
    "large-diverse": D4RLAntMazeTask("large", "random", "any"),
}


def _task(name: str) -> D4RLAntMazeTask:
    if name not in TASKS:
        raise ValueError(f"Unknown D4RL AntMaze dataset '{name}': choose one of {', '.join(TASKS)}.")
    return TASKS[name]


def dataset_id(name: str, ant: str = "d4rl") -> str:
    """
    :return: The Minari id of ``antmaze-d4rl-{name}``; with Gymnasium's ant (the AntMaze 2 x 2's cell of D4RL's design
        on Gymnasium's ant) ``sb3-iql/antmaze-d4rl-gymnasium-ant/{name}-v0``
    """
    _task(name)
    return f"sb3-iql/antmaze-d4rl/{name}-v0" if ant == "d4rl" else f"sb3-iql/antmaze-d4rl-gymnasium-ant/{name}-v0"


def make_collection_env(name: str, ant: str = "d4rl") -> gym.Env:
    """:return: The env ``antmaze-d4rl-{name}`` is collected in: D4RL's data maze, starts and goals, no end at the goal."""
    task = _task(name)
    kwargs = {} if ant == "d4rl" else {"ant": ant}
    return gym.make(
        eval_env_id(task.maze),
        maze_map=DATA_MAPS[task.maze],
        start=task.start,
        goals=task.goals,
        terminate_at_goal=False,
        max_episode_steps=DATA_EPISODE_STEPS,
        **kwargs,
    )


def make_eval_env(name: str, ant: str = "d4rl") -> gym.Env:
    """:return: The paper's task in ``antmaze-d4rl-{name}``'s maze (``sb3_iql/AntMazeD4RL_*-v0``), with ``ant``."""
    return gym.make(eval_env_id(_task(name).maze), **({} if ant == "d4rl" else {"ant": ant}))


def relabel_goal(name: str, seed: int) -> np.ndarray:
    """:return: The one evaluation goal the data's rewards are relabelled against: D4RL's ``env.target_goal``, drawn from ``seed``."""
    env = make_eval_env(name)
    _, info = env.reset(seed=seed)
    env.close()
    return info["goal"]


def _planner(env: gym.Env, controller: AntController, noise: float, rng: np.random.Generator) -> WaypointAnt:
    return WaypointAnt(env, controller, noise, rng, jitter=D4RL_WAYPOINT_JITTER)


def _step_infos(observation: np.ndarray, goal: np.ndarray) -> dict[str, np.ndarray]:
    """D4RL's ``infos``: the simulator state shown by ``observation`` (qpos 15, qvel 14) and the commanded goal."""
    return {"qpos": observation[:15].copy(), "qvel": observation[15:].copy(), "goal": np.array(goal, dtype=np.float64)}


def collect(
    name: str,
    n_transitions: int,
    controller: AntController,
    noise: float = DATA_ACTION_NOISE,
    seed: int = 0,
    progress: bool = True,
    ant: str = "d4rl",
) -> list:
    """
    Drive the ant through ``antmaze-d4rl-{name}``'s collection env for ``n_transitions`` steps (module docstring).

    :return: Minari episode buffers, rewards and terminations relabelled against ``relabel_goal(name, seed)``
    """
    env = make_collection_env(name, ant)
    goal = relabel_goal(name, seed)
    rng = np.random.default_rng(seed)
    episodes, collected, episode_seed = [], 0, seed
    with tqdm(total=n_transitions, desc=f"antmaze-d4rl-{name}", unit="step", disable=not progress) as bar:
        while collected < n_transitions:
            observation, info = env.reset(seed=episode_seed)
            episode_seed += 1
            driver = _planner(env, controller, noise, rng)
            observations, actions, infos = [observation], [], [_step_infos(observation, info["goal"])]
            truncated = False
            while not truncated and collected + len(actions) < n_transitions:
                action = driver.act(observation[2:], observation[:2], info["goal"])
                observation, _, _, truncated, info = env.step(action)
                observations.append(observation)
                actions.append(action)
                infos.append(_step_infos(observation, info["goal"]))
            reached = np.linalg.norm(np.asarray(observations[1:])[:, :2] - goal, axis=1) <= D4RL_GOAL_RADIUS
            truncations = np.arange(len(actions)) == len(actions) - 1
            episodes.append(episode_buffer(observations, actions, reached.astype(np.float64), reached, truncations, infos))
            collected += len(actions)
            bar.update(len(actions))
    env.close()
    return episodes


def planner_success(
    name: str,
    controller: AntController,
    n_episodes: int = 100,
    noise: float = DATA_ACTION_NOISE,
    seed: int = 0,
    ant: str = "d4rl",
) -> dict[str, float]:
    """
    The planner-driven ant, with the data's noise, on the paper's task in ``antmaze-d4rl-{name}``'s maze.

    :return: ``success_rate``, ``fell_over`` (share of episodes ending on its back or belly), ``mean_steps`` and
        ``median_steps`` of the successful episodes
    """
    env = make_eval_env(name, ant)
    rng = np.random.default_rng(seed)
    return planner_episodes(
        env,
        lambda: _planner(env, controller, noise, rng),
        lambda observation, info: (observation[2:], observation[:2], info["goal"]),
        n_episodes,
        seed,
    )


def build_antmaze_d4rl(
    name: str,
    n_transitions: int = D4RL_TRANSITIONS,
    noise: float = DATA_ACTION_NOISE,
    seed: int = 0,
    controller_file: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    ant: str = "d4rl",
) -> minari.MinariDataset:
    """
    Build ``sb3-iql/antmaze-d4rl/{name}-v0`` in D4RL's design and physics (module docstring).

    :param name: umaze, umaze-diverse, medium-play, medium-diverse, large-play or large-diverse
    :param n_transitions: Transitions (D4RL: 1M)
    :param noise: Std of the action noise (D4RL: 0.2)
    :param seed: Seed of the resets, goals, noise, waypoint offsets and of the relabelling goal
    :param controller_file: A goal-reaching ant controller, at full gain (default: ``data_controller(ant)``)
    :param ant: ``"d4rl"``; ``"gymnasium"``: the same design on Gymnasium's ant, written as ``dataset_id(name, ant)``
        (the AntMaze 2 x 2's cell of D4RL's design on Gymnasium's ant), made with Gymnasium's data controller
    """
    task = _task(name)
    controller = AntController.load(controller_file) if controller_file else data_controller(ant)
    controller_name = Path(controller_file).name if controller_file else f"the {ant} data controller"
    episodes = collect(name, n_transitions, controller, noise, seed, progress, ant)
    goal = relabel_goal(name, seed)
    eval_env = make_eval_env(name, ant)
    ant_text = "D4RL's ant (30 N m motors, 0.1 s steps)" if ant == "d4rl" else "Gymnasium's ant (150 N m motors, 0.05 s steps)"
    return write_dataset(
        dataset_id(name, ant),
        episodes,
        make_collection_env(name, ant),
        eval_env=eval_env.spec,
        ref_min_score=0.0,
        ref_max_score=1.0,
        description=(
            f"D4RL's antmaze-{name} design on {ant_text} in Gymnasium-Robotics' {task.maze} "
            f"maze: {'every episode from the start cell to the evaluation goal' if task.start == 'fixed' else 'random starts'}"
            f"{'' if task.start == 'fixed' else ' toward ' + ('the marked goal cells' if task.goals == 'marked' else 'any free cell')}"
            f", one goal per {DATA_EPISODE_STEPS}-step episode; BFS waypoints driving sb3-iql's goal-reaching ant "
            f"({controller_name}, actions scaled by {controller.gain:g}) with Gaussian action noise {noise}; "
            f"{n_transitions} transitions. Observations "
            f"qpos[:15] + qvel[:14]. Rewards and terminals relabelled: 1 where the next x-y is within {D4RL_GOAL_RADIUS} of the "
            f"evaluation goal ({goal[0]:.3f}, {goal[1]:.3f}), else 0. Evaluation env: {eval_env.spec.id}, the paper's task."
        ),
        algorithm_name="BFS waypoints + sb3-iql goal-reaching ant (D4RL physics)",
        overwrite=overwrite,
    )
