"""A D4RL-physics AntMaze dataset's episodes (default: medium-play): goals reached, terminal rows, starts, falls (a markdown row)."""

import sys

import minari
import numpy as np

from sb3_iql.datasets.ant_controller import fell_over
from sb3_iql.tasks.antmaze_d4rl import D4RL_GOAL_RADIUS

d = minari.load_dataset(sys.argv[1] if len(sys.argv) > 1 else "sb3-iql/antmaze-d4rl/medium-play-v0")
n = eps = reach_own = reach_eval = terminal_rows = end_fallen = rows_fallen = start_cell = 0
maze = d.recover_environment().unwrapped.maze
for e in d.iterate_episodes():
    eps += 1
    n += len(e.actions)
    xy = e.observations[1:, :2]
    goal = e.infos["goal"][0]
    reach_own += bool((np.linalg.norm(xy - goal, axis=1) <= D4RL_GOAL_RADIUS).any())
    reach_eval += bool(e.terminations.any())
    terminal_rows += int(e.terminations.sum())
    fallen = np.array([fell_over(s) for s in e.observations[1:, 2:]])
    end_fallen += bool(fallen[-1])
    rows_fallen += int(fallen.sum())
    start_cell += tuple(int(i) for i in maze.cell_xy_to_rowcol(e.observations[0, :2])) == (1, 1)
print(
    f"| {d.spec.dataset_id} | {eps} | {n:,} | {100 * reach_own / eps:.1f} | {100 * reach_eval / eps:.1f} | {terminal_rows:,} | {100 * start_cell / eps:.1f} | {100 * end_fallen / eps:.1f} | {100 * rows_fallen / n:.2f} |"
)
