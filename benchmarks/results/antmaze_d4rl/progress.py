"""
How far a saved policy gets on the paper's task in a D4RL-physics maze: successes, maze cells still to go at the end,
episodes ended upside down (a markdown-ready line).

    python benchmarks/results/antmaze_d4rl/progress.py MODEL.zip [DATASET_ID] [EPISODES]

The task is the dataset's evaluation env (default: sb3-iql/antmaze-d4rl/medium-play-v0; ``--ant gymnasium`` data
give the same task on Gymnasium's ant).
"""

import sys

import minari
import numpy as np
import torch as th

from sb3_iql import IQL
from sb3_iql.datasets.ant_controller import fell_over
from sb3_iql.datasets.maze import CellPlanner

th.set_num_threads(1)
model = IQL.load(sys.argv[1], device="cpu")
dataset = minari.load_dataset(sys.argv[2] if len(sys.argv) > 2 else "sb3-iql/antmaze-d4rl/medium-play-v0")
env = dataset.recover_environment(eval_env=True)
n_episodes = int(sys.argv[3]) if len(sys.argv) > 3 else 20
planner = CellPlanner(env.unwrapped.maze)
left, fallen, successes = [], 0, 0
for episode in range(n_episodes):
    observation, info = env.reset(seed=1000 + episode)
    start = planner.cells_between(observation[:2], info["goal"])
    done = False
    while not done:
        observation, _, terminated, truncated, info = env.step(model.predict(observation, deterministic=True)[0])
        done = terminated or truncated
    successes += info["success"]
    fallen += fell_over(observation[2:])
    left.append(planner.cells_between(observation[:2], info["goal"]))
print(
    f"{n_episodes} episodes: success {successes}, maze cells to go at the end {np.mean(left):.1f} of {start} "
    f"(median {np.median(left)}), ended upside down {fallen}"
)
