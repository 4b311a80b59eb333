"""
AntMaze as D4RL made it, on today's MuJoCo: D4RL's ant, mazes, resets, goal noise and success radius.

Gymnasium-Robotics' ``AntMaze_*-v4`` (and Minari's ``D4RL/antmaze/*-v1``, made in it) use Gymnasium's ant:
motors of gear 150 (an action of 1 is 150 N m) and a 0.01 s timestep, 0.05 s a step. D4RL's ant
(``d4rl/locomotion/assets/ant.xml`` behind ``NormalizedBoxEnv``) has motors of 30 N m at action 1, a 0.02 s
RK4 timestep, 0.1 s a step, and softer contacts. The same Gaussian action noise 0.2 is then 30 N m on one
ant and 6 N m on the other. ``d4rl_ant_xml`` writes Gymnasium's ant model with D4RL's settings (the bodies,
joints and geoms of the two files are the same), and ``D4RLAntMaze`` puts that ant into Gymnasium-Robotics'
maze with D4RL's task:

- observations ``Box(29)``: the ant's ``qpos[:15]`` and ``qvel[:14]`` (x-y included, no goal), as D4RL's
  ``expose_all_qpos=True``;
- the evaluation task (``sb3_iql/AntMazeD4RL_{UMaze,Medium,Large}-v0``): start in cell ``(1, 1)``, one goal cell
  ((3, 1) umaze, (6, 6) medium, (7, 9) large), the goal drawn anew each episode with D4RL's cell noise
  (D4RL's v2 resets), reward 1 and the end of the episode within 0.5 of it, 700 / 1,000 steps;
- data collection (``start="random"``, ``goals="marked"`` or ``"any"``, ``terminate_at_goal=False``): starts in a
  random free cell plus up to 1 m, goals from the maze's marked ``g`` cells (play) or any free cell (diverse).

Coordinates: Gymnasium-Robotics numbers rows downward in ``y``, D4RL upward, so these mazes are D4RL's seen in a
mirror; D4RL's noise offsets (always toward higher row and column numbers) are mirrored with them.
"""

import functools
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import minari
import numpy as np
from gymnasium import spaces
from gymnasium_robotics.envs.maze.maps import G, R

from sb3_iql.tasks.antmaze import free_cells, marked_cells

#: D4RL's success radius: reward 1 (and, in evaluation, the end of the episode) within it of the goal.
D4RL_GOAL_RADIUS = 0.5
#: D4RL's ant: the torque of an action of 1 (N m), the simulation timestep (s) and the steps of it per env step.
D4RL_MOTOR_TORQUE = 30.0
D4RL_TIMESTEP = 0.02
D4RL_FRAME_SKIP = 5
#: D4RL's contact softness (its ant.xml's default geom).
D4RL_CONTACT = {"solref": ".02 1", "solimp": ".8 .8 .01"}
#: D4RL's reset noise: uniform on every qpos entry, Gaussian on every qvel entry.
RESET_NOISE = 0.1
MAZE_SCALING = 4.0
#: D4RL's noise on a goal's position: U(0, 1) + U(0, 0.5) m on each axis (``maze_env.goal_sampler``).
GOAL_NOISE = (1.0, 0.5)
#: D4RL's random starts: a free cell, plus U(0, 1) m on each axis (``maze_env._get_reset_location``).
START_NOISE = 1.0
#: D4RL's episode lengths of evaluation, and of its data's episodes.
EVAL_STEPS = {"umaze": 700, "medium": 1000, "large": 1000}
DATA_EPISODE_STEPS = 1000

# D4RL's data mazes (maze_env.U_MAZE, BIG_MAZE, HARDEST_MAZE): "r" the start, "g" the hand-picked goal cells.
DATA_MAPS: dict[str, list[list]] = {
    "umaze": [[1, 1, 1, 1, 1], [1, R, 0, 0, 1], [1, 1, 1, 0, 1], [1, G, 0, 0, 1], [1, 1, 1, 1, 1]],
    "medium": [
        [1, 1, 1, 1, 1, 1, 1, 1],
        [1, R, 0, 1, 1, 0, 0, 1],
        [1, 0, 0, 1, 0, 0, G, 1],
        [1, 1, 0, 0, 0, 1, 1, 1],
        [1, 0, 0, 1, 0, 0, 0, 1],
        [1, G, 1, 0, 0, 1, 0, 1],
        [1, 0, 0, 0, 1, G, 0, 1],
        [1, 1, 1, 1, 1, 1, 1, 1],
    ],
    "large": [
        [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        [1, R, 0, 0, 0, 1, G, 0, 0, 0, 0, 1],
        [1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1],
        [1, 0, 0, 0, 0, G, 0, 1, 0, 0, G, 1],
        [1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1],
        [1, 0, G, 1, 0, 1, 0, 0, 0, 0, 0, 1],
        [1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1],
        [1, 0, 0, 1, G, 0, G, 1, 0, G, 0, 1],
        [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    ],
}
#: D4RL's evaluation goal cells (``*_TEST`` mazes); the start is the "r" cell, (1, 1).
EVAL_GOALS = {"umaze": (3, 1), "medium": (6, 6), "large": (7, 9)}
ENV_NAMES = {"umaze": "UMaze", "medium": "Medium", "large": "Large"}
STARTS = ("fixed", "random")
GOAL_CHOICES = ("marked", "any")

Cell = tuple[int, int]


def eval_env_id(maze: str) -> str:
    """:return: The registered id of the paper's task in the D4RL-physics ``maze``."""
    return f"sb3_iql/AntMazeD4RL_{ENV_NAMES[maze]}-v0"


def eval_map(maze: str) -> list[list]:
    """:return: D4RL's evaluation maze (``*_TEST``): the start ``r`` in (1, 1) and the one goal ``g``."""
    layout = [[1 if cell == 1 else 0 for cell in row] for row in DATA_MAPS[maze]]
    layout[1][1] = R
    row, col = EVAL_GOALS[maze]
    layout[row][col] = G
    return layout


@functools.cache
def d4rl_ant_xml() -> Path:
    """
    :return: A MuJoCo model of D4RL's ant, written once per process: Gymnasium's ``ant.xml`` (the same bodies, joints
        and geoms) with D4RL's 0.02 s timestep, 30 N m motors at action 1 and contact softness
    """
    source = Path(gym.__file__).parent / "envs" / "mujoco" / "assets" / "ant.xml"
    tree = ET.parse(source)
    option, default_geom = tree.find("option"), tree.find("default/geom")
    motors = tree.findall("actuator/motor")
    if option is None or default_geom is None or len(motors) != 8:
        raise RuntimeError(f"{source} is not the ant model this module knows (option, default geom, 8 motors).")
    option.set("timestep", str(D4RL_TIMESTEP))
    option.set("integrator", "RK4")
    default_geom.attrib.update(D4RL_CONTACT)
    for motor in motors:
        # ctrlrange stays [-1, 1]: torque = gear * action, D4RL's NormalizedBoxEnv mapping [-1, 1] onto [-30, 30] N m.
        motor.set("gear", str(D4RL_MOTOR_TORQUE))
    path = Path(tempfile.mkdtemp(prefix="sb3_iql_d4rl_ant_")) / "ant_d4rl.xml"
    tree.write(path)
    return path


#: The two ants: D4RL's (``d4rl_ant_xml``) and Gymnasium's (``AntMaze_*-v4``'s: 150 N m motors, 0.05 s steps).
ANTS = ("d4rl", "gymnasium")


def check_ant(ant: str) -> None:
    """Raise a ``ValueError`` unless ``ant`` is one of ``ANTS``."""
    if ant not in ANTS:
        raise ValueError(f"Unknown ant '{ant}': choose one of {', '.join(ANTS)}.")


def ant_kwargs(ant: str = "d4rl") -> dict[str, Any]:
    """
    :param ant: ``"d4rl"`` or ``"gymnasium"``
    :return: What makes a Gymnasium-Robotics ``AntMaze_*-v5`` env use that ant, with the 27-number ``observation`` of v4
    """
    check_ant(ant)
    kwargs: dict[str, Any] = {"include_cfrc_ext_in_observation": False, "frame_skip": D4RL_FRAME_SKIP}
    return {**kwargs, "xml_file": str(d4rl_ant_xml())} if ant == "d4rl" else kwargs


def make_d4rl_ant_maze(**kwargs: Any) -> gym.Env:
    """:return: Gymnasium-Robotics' ``AntMazeEnv`` (v5) with D4RL's ant: the entry point of ``d4rl_ant_env_id``'s envs."""
    from gymnasium_robotics.envs.maze.ant_maze_v5 import AntMazeEnv

    return AntMazeEnv(**kwargs, **ant_kwargs("d4rl"))


def d4rl_ant_env_id(env_id: str) -> str:
    """:return: The id of Gymnasium-Robotics' ``env_id`` (an ``AntMaze_*-v4``) with D4RL's ant: ``sb3_iql/AntMaze_*_D4RLAnt-v0``."""
    name = gym.envs.registration.parse_env_id(env_id)[1]
    return f"sb3_iql/{name}_D4RLAnt-v0"


def ant_maze_env_id(env_id: str, ant: str = "gymnasium") -> str:
    """
    :param env_id: A Gymnasium-Robotics ``AntMaze_*-v4`` id
    :param ant: ``"gymnasium"``: that env's own ant; ``"d4rl"``: D4RL's
    :return: The id of that maze with that ant (the same Dict observations)
    """
    check_ant(ant)
    return d4rl_ant_env_id(env_id) if ant == "d4rl" else env_id


class D4RLAntMaze(gym.Env):
    """
    D4RL's AntMaze task with D4RL's ant in a Gymnasium-Robotics maze (module docstring).

    :param maze: umaze, medium or large
    :param maze_map: The maze's map (default: D4RL's evaluation map for ``maze``): its ``r`` cell is the fixed start,
        its ``g`` cells the marked goals
    :param start: ``"fixed"``: the ``r`` cell (with D4RL's reset noise); ``"random"``: a random free cell that is no
        marked goal, plus up to 1 m (D4RL's ``non_zero_reset``)
    :param goals: ``"marked"``: one of the ``g`` cells; ``"any"``: any free cell (the diverse data); either with D4RL's
        goal noise, drawn at every reset
    :param terminate_at_goal: End the episode within ``D4RL_GOAL_RADIUS`` of the goal (evaluation); else the ant
        goes on with the same goal (D4RL's data)
    :param ant: ``"d4rl"``: D4RL's ant; ``"gymnasium"``: Gymnasium's (its motors and timestep), the same task otherwise
    :param render_mode: Gymnasium's render mode
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 10}

    def __init__(
        self,
        maze: str = "umaze",
        maze_map: list[list] | None = None,
        start: str = "fixed",
        goals: str = "marked",
        terminate_at_goal: bool = True,
        ant: str = "d4rl",
        render_mode: str | None = None,
    ):
        from gymnasium_robotics.envs.maze.ant_maze_v5 import AntMazeEnv

        if maze not in DATA_MAPS:
            raise ValueError(f"Unknown maze '{maze}': choose one of {', '.join(DATA_MAPS)}.")
        if start not in STARTS or goals not in GOAL_CHOICES:
            raise ValueError(f"start must be one of {STARTS} and goals one of {GOAL_CHOICES}; got {start!r}, {goals!r}.")
        self.maze_map = maze_map if maze_map is not None else eval_map(maze)
        self.start, self.goals, self.terminate_at_goal = start, goals, terminate_at_goal
        self.start_cells = (
            marked_cells(self.maze_map, R)
            if start == "fixed"
            else [cell for cell in free_cells(self.maze_map) if cell not in marked_cells(self.maze_map, G)]
        )
        self.goal_cells = marked_cells(self.maze_map, G) if goals == "marked" else free_cells(self.maze_map)
        if not self.start_cells or not self.goal_cells:
            raise ValueError("The maze map needs an 'r' start cell for start='fixed' and 'g' goal cells for goals='marked'.")
        # Continuing and keeping its goal: this class decides success, reward and termination at D4RL's radius.
        self.maze_env = AntMazeEnv(
            render_mode=render_mode, maze_map=self.maze_map, continuing_task=True, reset_target=False, **ant_kwargs(ant)
        )
        self.maze_env.position_noise_range = 0.0  # cell centres; D4RL's own noise is added in reset
        self.render_mode = render_mode
        self.action_space = self.maze_env.action_space
        self.observation_space = spaces.Box(-np.inf, np.inf, (29,), np.float64)
        self.goal = np.zeros(2)

    @property
    def maze(self):
        """Gymnasium-Robotics' ``Maze``: the geometry (cell centres, ``cell_xy_to_rowcol``)."""
        return self.maze_env.maze

    @property
    def ant_env(self):
        """The MuJoCo ant env inside (its ``data`` holds ``qpos`` and ``qvel``; ``dt`` the step's duration)."""
        return self.maze_env.ant_env

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """
        :param options: ``reset_cell`` / ``goal_cell`` (``(row, col)``) fix the episode's start and goal cells
        """
        super().reset(seed=seed)
        options = options or {}
        start_cell = options.get("reset_cell")
        goal_cell = options.get("goal_cell")
        start_cell = tuple(start_cell) if start_cell is not None else self._pick(self.start_cells)
        goal_cell = tuple(goal_cell) if goal_cell is not None else self._pick(self.goal_cells)
        self.maze_env.reset(
            seed=None if seed is None else int(self.np_random.integers(2**31)),
            options={"reset_cell": np.array(start_cell), "goal_cell": np.array(goal_cell)},
        )
        self.goal = self.maze_env.goal + self._mirrored(sum(self.np_random.uniform(0.0, size, 2) for size in GOAL_NOISE))
        self.maze_env.goal = self.goal
        self.maze_env.update_target_site_pos()
        data = self.ant_env.data
        qpos = data.qpos.copy() + self.np_random.uniform(-RESET_NOISE, RESET_NOISE, data.qpos.shape)
        if self.start == "random":
            qpos[:2] = self.maze.cell_rowcol_to_xy(np.array(start_cell)) + self._mirrored(
                self.np_random.uniform(0, START_NOISE, 2)
            )
        qvel = RESET_NOISE * self.np_random.standard_normal(data.qvel.shape)
        self.ant_env.set_state(qpos, qvel)
        return self._observation(), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        _, _, _, _, info = self.ant_env.step(action)
        info = {**info, **self._info()}
        if self.render_mode == "human":
            self.render()
        return self._observation(), float(info["success"]), bool(info["success"] and self.terminate_at_goal), False, info

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() was called on an env made without a render_mode: nothing to render.")
            return None
        return self.maze_env.render()

    def close(self) -> None:
        self.maze_env.close()

    def _pick(self, cells: list[Cell]) -> Cell:
        return cells[int(self.np_random.integers(len(cells)))]

    @staticmethod
    def _mirrored(offset: np.ndarray) -> np.ndarray:
        """D4RL's offsets toward higher columns (x) and rows (its y; Gymnasium-Robotics' -y)."""
        return np.array([offset[0], -offset[1]])

    def _observation(self) -> np.ndarray:
        data = self.ant_env.data
        return np.concatenate([data.qpos[:15], data.qvel[:14]]).astype(np.float64)

    def _info(self) -> dict[str, Any]:
        position = self.ant_env.data.qpos[:2]
        return {"success": bool(np.linalg.norm(position - self.goal) <= D4RL_GOAL_RADIUS), "goal": self.goal.copy()}


def is_d4rl_antmaze(dataset: minari.MinariDataset) -> bool:
    """:return: Whether the dataset was collected in a D4RL-physics maze (its evaluation env is the paper's task)."""
    spec = dataset.spec.env_spec
    return spec is not None and spec.id.startswith("sb3_iql/AntMazeD4RL_")


def register_envs() -> None:
    """
    Register the paper's task in each D4RL-physics maze as ``sb3_iql/AntMazeD4RL_{UMaze,Medium,Large}-v0``, and each of
    Gymnasium-Robotics' ``AntMaze_*-v4`` envs with D4RL's ant as ``d4rl_ant_env_id`` (Minari's design on D4RL's ant).
    """
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    for env_id, spec in list(gym.registry.items()):
        if spec.name.startswith("AntMaze_") and spec.namespace is None and spec.version == 4 and "Dense" not in spec.name:
            if d4rl_ant_env_id(env_id) not in gym.registry:
                gym.register(
                    d4rl_ant_env_id(env_id),
                    entry_point="sb3_iql.tasks.antmaze_d4rl:make_d4rl_ant_maze",
                    max_episode_steps=spec.max_episode_steps,
                    kwargs=dict(spec.kwargs),
                )
    for maze, steps in EVAL_STEPS.items():
        if eval_env_id(maze) not in gym.registry:
            gym.register(
                eval_env_id(maze),
                entry_point="sb3_iql.tasks.antmaze_d4rl:D4RLAntMaze",
                max_episode_steps=steps,
                kwargs={"maze": maze},
            )


register_envs()
