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

Where ours departs: the goal-reaching ant is ours (D4RL's was not published); the maze is D4RL's seen in a mirror
(``sb3_iql.tasks.antmaze_d4rl``). Two versions (``VERSIONS``) differ in the data ant: v0 drives the SAC stage trained on
Gymnasium's ant with waypoints kept until the ant is within 0.45 of them, acting with its mean; v1 drives a controller
trained on D4RL's ant D4RL's way (``D4RLNavigation``: re-aimed at every step, 10 m away), acting with samples of its
tanh-Gaussian as D4RL's rlkit exploration policy did. Both add the data's noise N(0, 0.2).
"""

import re
from dataclasses import dataclass, replace
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np
from tqdm.auto import tqdm

from sb3_iql.data.episodes import episode_buffer
from sb3_iql.datasets.ant_controller import (
    D4RL_ANT_CONTROLLER,
    D4RL_CONTROLLER,
    DATA_ACTION_NOISE,
    AntController,
    data_controller,
)
from sb3_iql.datasets.antmaze import WaypointAnt, planner_episodes
from sb3_iql.datasets.maze import Cell, CellPlanner
from sb3_iql.datasets.recording import write_dataset
from sb3_iql.tasks.antmaze_d4rl import (
    D4RL_GOAL_RADIUS,
    DATA_EPISODE_STEPS,
    DATA_MAPS,
    MAZE_SCALING,
    eval_env_id,
)

D4RL_TRANSITIONS = 1_000_000
#: D4RL's waypoint offset, U(0, 1) m toward higher columns and rows, as ``CellWaypoints``' jitter (``centre - U * jitter``;
#: Gymnasium-Robotics' rows run toward -y).
D4RL_WAYPOINT_JITTER = np.array([-1.0, 1.0])
#: D4RL's navigation policy gives its goal-reaching ant the waypoint's direction scaled to this length (m), so the ant
#: never slows down for a waypoint (``generate_ant_maze_datasets.py``: ``goal / norm(goal) * 10``).
D4RL_AIM_DISTANCE = 10.0
#: How the data ant is driven along the maze's cells (``DataVersion.driving``).
DRIVINGS = ("ours", "d4rl")


@dataclass(frozen=True)
class DataVersion:
    """
    What one version of the ``antmaze-d4rl`` data is made with (D4RL's design and ant in both).

    :param controller: The goal-reaching ant's controller file
    :param driving: ``"ours"``: a waypoint kept until the ant is within 0.45 m of it (``CellWaypoints``);
        ``"d4rl"``: D4RL's ``create_navigation_policy``, re-aimed at every step (``D4RLNavigation``)
    :param sampled: Act with samples of the controller's tanh-Gaussian (D4RL's data ant acted with rlkit's exploration
        policy, ``policy.get_action``) instead of its mean; the data's N(0, 0.2) noise comes on top in both
    """

    controller: Path
    driving: str
    sampled: bool


#: v0: the SAC stage trained on Gymnasium's ant, our driving, mean actions. v1: D4RL's whole recipe with a controller
#: trained on D4RL's ant (``train-ant --ant d4rl``), driven D4RL's way, acting with samples.
VERSIONS = {
    0: DataVersion(Path(D4RL_CONTROLLER), "ours", sampled=False),
    1: DataVersion(Path(D4RL_ANT_CONTROLLER), "d4rl", sampled=True),
}


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


def _version(version: int, driving: str | None = None) -> DataVersion:
    """:return: ``VERSIONS[version]``, with its driving replaced by ``driving`` where given."""
    if version not in VERSIONS:
        raise ValueError(f"Unknown antmaze-d4rl data version {version}: choose one of {', '.join(map(str, VERSIONS))}.")
    if driving is not None and driving not in DRIVINGS:
        raise ValueError(f"Unknown driving '{driving}': choose one of {', '.join(DRIVINGS)}.")
    return VERSIONS[version] if driving is None else replace(VERSIONS[version], driving=driving)


def dataset_id(name: str, ant: str = "d4rl", version: int = 0, driving: str | None = None) -> str:
    """
    :param version: The data version (``VERSIONS``)
    :param driving: Another driving than the version's own (``DRIVINGS``): the ablation that says which part matters
    :return: The Minari id of ``antmaze-d4rl-{name}``: ``sb3-iql/antmaze-d4rl/{name}-v{version}``; with Gymnasium's ant
        (the AntMaze 2 x 2's cell of D4RL's design on Gymnasium's ant, v0 only)
        ``sb3-iql/antmaze-d4rl-gymnasium-ant/{name}-v0``; with another driving ``sb3-iql/antmaze-d4rl-{driving}-driving/...``
    """
    _task(name)
    recipe = _version(version, driving)
    if ant != "d4rl":
        if version != 0:
            raise ValueError(
                f"antmaze-d4rl data on {ant}'s ant exist as v0 only (the AntMaze 2 x 2); v{version} is D4RL's ant."
            )
        return f"sb3-iql/antmaze-d4rl-gymnasium-ant/{name}-v0"
    namespace = "antmaze-d4rl" if recipe == VERSIONS[version] else f"antmaze-d4rl-{recipe.driving}-driving"
    return f"sb3-iql/{namespace}/{name}-v{version}"


def dataset_recipe(identifier: str) -> tuple[str, str, int, str | None]:
    """
    :param identifier: A Minari id that ``dataset_id`` writes
    :return: Its ``(name, ant, version, driving)``: the inverse of ``dataset_id`` (driving None: the version's own)
    """
    match = re.fullmatch(r"sb3-iql/antmaze-d4rl(?:-(\w+)-driving|-(gymnasium)-ant)?/([\w-]+)-v(\d+)", identifier)
    if match is None or match[3] not in TASKS:
        raise ValueError(
            f"'{identifier}' is no antmaze-d4rl dataset id (sb3-iql/antmaze-d4rl/<name>-v<version>, see dataset_id)."
        )
    driving, gymnasium, name, version = match[1], match[2], match[3], int(match[4])
    ant = "gymnasium" if gymnasium else "d4rl"
    if dataset_id(name, ant, version, driving) != identifier:
        raise ValueError(f"'{identifier}' is no antmaze-d4rl dataset id (see dataset_id).")
    return name, ant, version, driving


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


class D4RLNavigation(CellPlanner):
    """
    D4RL's waypoints (``maze_env.create_navigation_policy``): at every step, from the ant's cell, the next cell on the
    shortest path to the goal's cell, its centre jittered anew (``D4RL_WAYPOINT_JITTER``), or the goal itself from the
    goal's cell and the one before it; aimed at ``D4RL_AIM_DISTANCE`` along that direction, so the ant never brakes.

    D4RL's cells are ``int(1 + offset / 4)`` on each axis, the offset measured from the start cell's centre (``_xy_to_rowcol``):
    a cell there runs from a maze cell's centre to the next one's, half a cell off the walls. Where that puts the ant in
    a wall cell, D4RL's search still starts from it: the waypoint is its open neighbour nearest to the goal.

    :param maze: A Gymnasium-Robotics ``Maze`` of ``sb3_iql.tasks.antmaze_d4rl`` (D4RL's maze seen in a mirror)
    :param rng: Random generator of the jitter
    """

    def __init__(self, maze, rng: np.random.Generator):
        super().__init__(maze)
        self.rng = rng
        self.origin = maze.cell_rowcol_to_xy(np.array([1, 1]))

    def cell_of(self, position: np.ndarray) -> Cell:
        """:return: D4RL's cell of ``position`` (class docstring); rows run toward -y here (the mirror)."""
        right, down = position[0] - self.origin[0], self.origin[1] - position[1]
        return int(1 + max(down, 1e-4) / MAZE_SCALING), int(1 + max(right, 1e-4) / MAZE_SCALING)

    def next_cell(self, cell: Cell, goal_cell: Cell) -> Cell:
        """:return: D4RL's ``_get_best_next_rowcol``: the neighbour of ``cell`` one step closer to ``goal_cell``."""
        if cell == goal_cell:
            return goal_cell
        step_toward = self.next_cell_toward(goal_cell)
        if cell in step_toward:
            return step_toward[cell]
        row, col = cell
        open_neighbours = [n for n in ((row, col - 1), (row, col + 1), (row + 1, col), (row - 1, col)) if n in step_toward]
        return min(open_neighbours, key=lambda n: self.path_length(n, goal_cell), default=goal_cell)

    def __call__(self, position: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """:return: The point ``D4RL_AIM_DISTANCE`` from ``position`` toward this step's waypoint."""
        goal_cell = self.cell_of(goal)
        waypoint_cell = self.next_cell(self.cell_of(position), goal_cell)
        if waypoint_cell == goal_cell:
            waypoint = np.asarray(goal, dtype=np.float64)
        else:
            waypoint = self.maze.cell_rowcol_to_xy(np.array(waypoint_cell)) - self.rng.uniform(size=2) * D4RL_WAYPOINT_JITTER
        offset = waypoint - position
        return position + offset / max(float(np.linalg.norm(offset)), 1e-6) * D4RL_AIM_DISTANCE


def _planner(
    env: gym.Env, controller: AntController, noise: float, rng: np.random.Generator, recipe: DataVersion
) -> WaypointAnt:
    """:return: The data ant of ``recipe``: ``controller`` driven its way, with noise ``noise``."""
    if recipe.driving == "d4rl":
        return WaypointAnt(
            env, controller, noise, rng, waypoints=D4RLNavigation(env.unwrapped.maze, rng), sampled=recipe.sampled
        )
    return WaypointAnt(env, controller, noise, rng, jitter=D4RL_WAYPOINT_JITTER, sampled=recipe.sampled)


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
    recipe: DataVersion = VERSIONS[0],
) -> list:
    """
    Drive the ant through ``antmaze-d4rl-{name}``'s collection env for ``n_transitions`` steps (module docstring).

    :param recipe: How the ant is driven and acts (``DataVersion``; its controller file is ``controller``'s business)
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
            driver = _planner(env, controller, noise, rng, recipe)
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


def version_controller(version: int = 0, ant: str = "d4rl") -> AntController:
    """:return: The controller that makes data ``version`` on ``ant`` (Gymnasium's ant: its own data controller, v0)."""
    return AntController.load(VERSIONS[version].controller) if ant == "d4rl" else data_controller(ant)


def planner_success(
    name: str,
    controller: AntController | None = None,
    n_episodes: int = 100,
    noise: float = DATA_ACTION_NOISE,
    seed: int = 0,
    ant: str = "d4rl",
    version: int = 0,
    driving: str | None = None,
) -> dict[str, float]:
    """
    The data ant of ``version`` (its driving, or ``driving``; its mean or samples), with the data's noise, on the paper's
    task in ``antmaze-d4rl-{name}``'s maze.

    :param controller: The goal-reaching ant (default: the version's own, ``version_controller``)
    :return: ``success_rate``, ``fell_over`` (share of episodes ending on its back or belly), ``mean_steps`` and
        ``median_steps`` of the successful episodes
    """
    recipe = _version(version, driving)
    controller = controller or version_controller(version, ant)
    env = make_eval_env(name, ant)
    rng = np.random.default_rng(seed)
    return planner_episodes(
        env,
        lambda: _planner(env, controller, noise, rng, recipe),
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
    version: int = 0,
    driving: str | None = None,
) -> minari.MinariDataset:
    """
    Build ``sb3-iql/antmaze-d4rl/{name}-v{version}`` in D4RL's design and physics (module docstring).

    :param name: umaze, umaze-diverse, medium-play, medium-diverse, large-play or large-diverse
    :param n_transitions: Transitions (D4RL: 1M)
    :param noise: Std of the action noise (D4RL: 0.2)
    :param seed: Seed of the resets, goals, noise, waypoint offsets and of the relabelling goal
    :param controller_file: A goal-reaching ant controller, at full gain (default: ``version_controller(version, ant)``)
    :param ant: ``"d4rl"``; ``"gymnasium"``: the same design on Gymnasium's ant, written as ``dataset_id(name, ant)``
        (the AntMaze 2 x 2's cell of D4RL's design on Gymnasium's ant), made with Gymnasium's data controller
    :param version: The data version (``VERSIONS``): 0 ours, 1 D4RL's whole recipe with a controller of D4RL's ant
    :param driving: Another driving than the version's (``DRIVINGS``), written under its own id (``dataset_id``)
    """
    task = _task(name)
    identifier = dataset_id(name, ant, version, driving)
    recipe = _version(version, driving)
    controller = AntController.load(controller_file) if controller_file else version_controller(version, ant)
    controller_name = (
        Path(controller_file or recipe.controller).name
        if ant == "d4rl" or controller_file
        else "the gymnasium data controller"
    )
    episodes = collect(name, n_transitions, controller, noise, seed, progress, ant, recipe)
    goal = relabel_goal(name, seed)
    eval_env = make_eval_env(name, ant)
    ant_text = "D4RL's ant (30 N m motors, 0.1 s steps)" if ant == "d4rl" else "Gymnasium's ant (150 N m motors, 0.05 s steps)"
    driving_text = (
        "D4RL's navigation (the next cell's jittered centre re-aimed at every step, 10 m away)"
        if recipe.driving == "d4rl"
        else "BFS waypoints kept until reached within 0.45"
    )
    acting = "samples of its tanh-Gaussian" if recipe.sampled else "its mean action"
    return write_dataset(
        identifier,
        episodes,
        make_collection_env(name, ant),
        eval_env=eval_env.spec,
        ref_min_score=0.0,
        ref_max_score=1.0,
        description=(
            f"D4RL's antmaze-{name} design on {ant_text} in Gymnasium-Robotics' {task.maze} "
            f"maze: {'every episode from the start cell to the evaluation goal' if task.start == 'fixed' else 'random starts'}"
            f"{'' if task.start == 'fixed' else ' toward ' + ('the marked goal cells' if task.goals == 'marked' else 'any free cell')}"
            f", one goal per {DATA_EPISODE_STEPS}-step episode; {driving_text} driving sb3-iql's goal-reaching ant "
            f"({controller_name}, actions scaled by {controller.gain:g}, {acting}) with Gaussian action noise {noise}; "
            f"{n_transitions} transitions. Observations "
            f"qpos[:15] + qvel[:14]. Rewards and terminals relabelled: 1 where the next x-y is within {D4RL_GOAL_RADIUS} of the "
            f"evaluation goal ({goal[0]:.3f}, {goal[1]:.3f}), else 0. Evaluation env: {eval_env.spec.id}, the paper's task."
        ),
        algorithm_name="BFS waypoints + sb3-iql goal-reaching ant (D4RL physics)",
        overwrite=overwrite,
    )
