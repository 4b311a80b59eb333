"""
Maze stitching datasets in the spirit of D4RL AntMaze, with Gymnasium-Robotics' point agent.

A waypoint controller drives the agent through the maze toward commanded cells; when it reaches
one it is given another, so no episode goes from the start to the goal on purpose and a policy
must stitch pieces of trajectories together. As in D4RL, the evaluation goal is fixed and the
reward is sparse: 1 within 0.45 of the goal, else 0. Reaching the goal ends the episode
(a termination), in the data as in evaluation, so returns are 0 or 1.

Styles (D4RL's names):
- ``diverse``: every episode starts in a random open cell and goals are random open cells;
- ``play``: every episode starts in the evaluation start cell and goals come from a fixed
  hand-picked list of cells (corners, dead ends and junctions of each maze).

AntMaze itself, with a goal-reaching ant under the same kind of planner, is ``antmaze.py``.
"""

from collections import deque

import gymnasium as gym
import minari
import numpy as np
from gymnasium_robotics.envs.maze import maps
from tqdm.auto import tqdm

from sb3_iql.data.episodes import episode_buffer
from sb3_iql.datasets.recording import write_dataset
from sb3_iql.tasks.antmaze import GOAL_RADIUS, free_cells  # GOAL_RADIUS: Gymnasium-Robotics' maze success threshold

Cell = tuple[int, int]

# Evaluation start and goal cells (row, col) as in D4RL AntMaze and Minari's re-creations,
# and Gymnasium-Robotics' PointMaze episode lengths.
MAZES: dict[str, dict] = {
    "umaze": {"map": maps.U_MAZE, "env_id": "PointMaze_UMaze-v3", "start": (1, 1), "goal": (3, 1), "eval_steps": 300},
    "medium": {"map": maps.MEDIUM_MAZE, "env_id": "PointMaze_Medium-v3", "start": (1, 1), "goal": (6, 6), "eval_steps": 600},
    "large": {"map": maps.LARGE_MAZE, "env_id": "PointMaze_Large-v3", "start": (1, 1), "goal": (7, 9), "eval_steps": 800},
}
STYLES = ("diverse", "play")
# D4RL AntMaze: 1M transitions in episodes of 1,000 steps.
D4RL_TRANSITIONS = 1_000_000
D4RL_EPISODE_STEPS = 1000
P_GAIN, D_GAIN = 10.0, 1.0
# The goal-reaching ant's waypoints (Minari's AntMaze recipe): reached within the maze's goal radius, jittered by up to 0.2.
WAYPOINT_RADIUS = GOAL_RADIUS
WAYPOINT_JITTER = 0.2


def maze_map(maze: str) -> list[list]:
    """:return: The maze's map with its evaluation start ``"r"`` and goal ``"g"`` cells marked."""
    if maze not in MAZES:
        raise ValueError(f"Unknown maze '{maze}': choose one of {', '.join(MAZES)}.")
    spec = MAZES[maze]
    layout = [list(row) for row in spec["map"]]
    layout[spec["start"][0]][spec["start"][1]] = "r"
    layout[spec["goal"][0]][spec["goal"][1]] = "g"
    return layout


def make_env(maze: str, continuing_task: bool = False, max_episode_steps: int | None = None) -> gym.Env:
    """
    :param maze: umaze, medium or large
    :param continuing_task: Keep going after reaching the goal (data collection) instead of terminating
    :param max_episode_steps: Episode length (default: Gymnasium-Robotics' for the maze)
    :return: The PointMaze env with the fixed evaluation start and goal
    """
    layout = maze_map(maze)
    return gym.make(
        MAZES[maze]["env_id"],
        maze_map=layout,
        continuing_task=continuing_task,
        reset_target=False,
        max_episode_steps=max_episode_steps or MAZES[maze]["eval_steps"],
    )


def play_goal_cells(layout: list[list]) -> list[Cell]:
    """The "play" goals: dead ends and junctions, cells with other than two open neighbours."""
    cells = set(free_cells(layout))
    return [cell for cell in sorted(cells) if sum(neighbour in cells for neighbour in _neighbours(cell)) != 2]


def _neighbours(cell: Cell) -> list[Cell]:
    row, col = cell
    return [(row - 1, col), (row + 1, col), (row, col - 1), (row, col + 1)]


class CellPlanner:
    """
    Shortest paths over a maze's open cells (breadth-first search, cached per target).

    :param maze: A Gymnasium-Robotics ``Maze`` (``env.unwrapped.maze``)
    """

    def __init__(self, maze):
        self.maze = maze
        self.cells = set(free_cells(maze.maze_map))
        self._next_cell: dict[Cell, dict[Cell, Cell]] = {}

    def next_cell_toward(self, target: Cell) -> dict[Cell, Cell]:
        """:return: For every open cell, the neighbour one step closer to ``target``."""
        if target not in self._next_cell:
            step_toward, frontier = {target: target}, deque([target])
            while frontier:
                cell = frontier.popleft()
                for neighbour in _neighbours(cell):
                    if neighbour in self.cells and neighbour not in step_toward:
                        step_toward[neighbour] = cell
                        frontier.append(neighbour)
            self._next_cell[target] = step_toward
        return self._next_cell[target]

    def cell_of(self, position: np.ndarray) -> Cell:
        row, col = self.maze.cell_xy_to_rowcol(position)
        return int(row), int(col)

    def cells_between(self, position: np.ndarray, target: np.ndarray) -> int:
        """:return: The number of cells on the shortest path from ``position``'s cell to ``target``'s."""
        return self.path_length(self.cell_of(position), self.cell_of(target))

    def path_length(self, cell: Cell, target: Cell) -> int:
        """:return: The number of steps on the shortest path from open ``cell`` to ``target``."""
        step_toward = self.next_cell_toward(target)
        n_cells = 0
        while cell != target:
            cell, n_cells = step_toward[cell], n_cells + 1
        return n_cells


class CellWaypoints(CellPlanner):
    """
    The next waypoint on the shortest cell path to a goal: the centre of the next cell (slightly
    jittered) until the agent comes within ``radius`` of it, then the next one, and in the goal's cell
    the goal itself. It plans anew when the goal changes or the agent leaves the path (a reset, a push).

    :param maze: A Gymnasium-Robotics ``Maze``
    :param rng: Random generator of the jitter
    :param radius: Distance at which a waypoint counts as reached
    :param jitter: Size of the random offset of each waypoint from its cell's centre: ``centre - U(0, 1) * jitter`` on
        each axis (a pair gives each axis its own size and sign)
    """

    def __init__(
        self, maze, rng: np.random.Generator, radius: float = WAYPOINT_RADIUS, jitter: float | np.ndarray = WAYPOINT_JITTER
    ):
        super().__init__(maze)
        self.rng = rng
        self.radius = radius
        self.jitter = jitter
        self.waypoint_cell: Cell | None = None
        self.waypoint = np.zeros(2)
        self.goal = np.full(2, np.nan)

    def __call__(self, position: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """:return: Where to go next from ``position`` on the way to ``goal``."""
        if not np.allclose(goal, self.goal) or self._lost(position):
            self.goal = np.array(goal, copy=True)
            self._aim(self.cell_of(position))
        elif self.waypoint_cell is not None and np.linalg.norm(self.waypoint - position) <= self.radius:
            self._aim(self.waypoint_cell)
        return self.waypoint

    def _lost(self, position: np.ndarray) -> bool:
        """Whether the agent is no longer in or next to its waypoint's cell."""
        if self.waypoint_cell is None:
            return False
        row, col = self.cell_of(position)
        return abs(row - self.waypoint_cell[0]) + abs(col - self.waypoint_cell[1]) > 1

    def _aim(self, from_cell: Cell) -> None:
        goal_cell = self.cell_of(self.goal)
        next_cell = self.next_cell_toward(goal_cell).get(from_cell, goal_cell)
        if from_cell == goal_cell or next_cell == goal_cell:
            self.waypoint_cell, self.waypoint = None, self.goal.copy()
            return
        self.waypoint_cell = next_cell
        centre = self.maze.cell_rowcol_to_xy(np.array(next_cell))
        self.waypoint = centre - self.rng.uniform(size=2) * self.jitter


class WaypointController(CellPlanner):
    """
    Steer the point toward a cell along the shortest path through the maze's cells: a PD
    controller on the centre of the next cell, with Gaussian action noise.

    :param env: The PointMaze env (its ``unwrapped.maze`` gives the geometry)
    :param noise: Std of the action noise
    :param rng: Random generator of the noise
    """

    def __init__(self, env: gym.Env, noise: float, rng: np.random.Generator):
        super().__init__(env.unwrapped.maze)
        self.noise = noise
        self.rng = rng

    def __call__(self, observation: np.ndarray, target: Cell) -> np.ndarray:
        position, velocity = observation[:2], observation[2:4]
        cell = self.cell_of(position)
        waypoint_cell = self.next_cell_toward(target).get(cell, target)
        waypoint = self.maze.cell_rowcol_to_xy(np.array(waypoint_cell))
        action = P_GAIN * (waypoint - position) - D_GAIN * velocity + self.noise * self.rng.standard_normal(2)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


def collect(
    maze: str,
    style: str,
    n_transitions: int,
    episode_steps: int = D4RL_EPISODE_STEPS,
    noise: float = 0.2,
    seed: int = 0,
    progress: bool = True,
) -> list:
    """
    Drive the point through ``maze`` for ``n_transitions`` steps and cut the stream into episodes.

    An episode ends when the agent reaches the evaluation goal (termination) or after
    ``episode_steps`` steps (truncation); then the env is reset (``diverse``: in a random
    open cell; ``play``: in the start cell).
    """
    if style not in STYLES:
        raise ValueError(f"Unknown style '{style}': choose one of {', '.join(STYLES)}.")
    rng = np.random.default_rng(seed)
    env = make_env(maze, continuing_task=True, max_episode_steps=None).unwrapped
    controller = WaypointController(env, noise, rng)
    layout = env.maze.maze_map
    goals = free_cells(layout) if style == "diverse" else play_goal_cells(layout)
    eval_start, eval_goal = MAZES[maze]["start"], MAZES[maze]["goal"]
    episodes, steps_since_reset, observation, target = [], episode_steps, None, None
    collected = 0  # a disabled tqdm does not count
    with tqdm(total=n_transitions, desc=f"{maze}-{style}", unit="step", disable=not progress) as bar:
        while collected < n_transitions:
            if steps_since_reset >= episode_steps:
                start = goals[rng.integers(len(goals))] if style == "diverse" else eval_start
                observation, _ = env.reset(
                    seed=int(rng.integers(2**31)), options={"reset_cell": np.array(start), "goal_cell": np.array(eval_goal)}
                )
                steps_since_reset = 0
            observations, actions, rewards, terminations, truncations = [observation], [], [], [], []
            while True:
                if target is None or controller.cell_of(observation["achieved_goal"]) == target:
                    target = goals[rng.integers(len(goals))]
                action = controller(observation["observation"], target)
                observation, reward, _, _, _ = env.step(action)
                steps_since_reset += 1
                observations.append(observation)
                actions.append(action)
                rewards.append(float(reward))
                reached_goal = reward > 0
                out_of_time = steps_since_reset >= episode_steps or collected + len(actions) >= n_transitions
                terminations.append(reached_goal)
                truncations.append(out_of_time and not reached_goal)
                if reached_goal or out_of_time:
                    break
            collected += len(actions)
            bar.update(len(actions))
            episodes.append(episode_buffer(observations, actions, rewards, terminations, truncations))
            if reached_goal:
                # As in evaluation, reaching the goal ends the run: start afresh.
                steps_since_reset, target = episode_steps, None
    return episodes


def build_maze(
    maze: str,
    style: str = "diverse",
    n_transitions: int = D4RL_TRANSITIONS,
    episode_steps: int = D4RL_EPISODE_STEPS,
    noise: float = 0.2,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> minari.MinariDataset:
    """
    Build ``sb3-iql/pointmaze/{maze}-{style}-v0``: see the module docstring for the recipe.

    :param maze: umaze, medium or large
    :param style: diverse or play
    :param n_transitions: Transitions (D4RL: 1M)
    :param episode_steps: Steps between resets (D4RL: 1,000)
    :param noise: Std of the controller's action noise
    :param seed: Seed of resets, goals and noise
    """
    episodes = collect(maze, style, n_transitions, episode_steps, noise, seed, progress)
    return write_dataset(
        f"sb3-iql/pointmaze/{maze}-{style}-v0",
        episodes,
        make_env(maze),
        ref_min_score=0.0,
        ref_max_score=1.0,
        description=(
            f"D4RL AntMaze-style stitching data in {MAZES[maze]['env_id']} with the point agent: a BFS waypoint "
            f"controller (PD, gains {P_GAIN}/{D_GAIN}, action noise {noise}) drives to "
            f"{'random open cells from random starts' if style == 'diverse' else 'hand-picked cells from the fixed start'}; "
            f"{n_transitions} transitions in episodes of at most {episode_steps} steps. Fixed evaluation start {MAZES[maze]['start']} "
            f"and goal {MAZES[maze]['goal']}; reward 1 within {GOAL_RADIUS} of the goal, where the episode terminates."
        ),
        algorithm_name="waypoint controller (D4RL AntMaze style)",
        overwrite=overwrite,
    )
