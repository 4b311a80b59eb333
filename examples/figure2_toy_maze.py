"""
The IQL paper's Figure 2 on a toy maze: from data that is mostly random actions, one-step policy evaluation
(expectile 0.5, SARSA-like) learns values that decay to zero away from the goal, while IQL's upper
expectile (0.9) learns values close to the optimal ones, and a far better policy.

    python examples/figure2_toy_maze.py --steps 10000

A grid maze with Discrete actions (up, down, left, right); reward 1 on reaching the goal, which ends the
episode; discount 0.9. The data: 500 episodes of 30 steps from random open cells, each action random
with probability 0.8 and on a shortest path otherwise. Value iteration gives the optimal V; IQL (discrete,
the same update as for Box actions) learns V at expectile 0.5 and 0.9 from the data. Writes the three
value maps and the policies' success rates from the start cell to ``--out``.
"""

import argparse
import csv
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th

from sb3_iql import IQL

# "#" = wall; S = start, G = goal. A U-shaped corridor: the goal is 12 steps from the start along the maze,
# 2 cells away through the wall.
LAYOUT = [
    "########",
    "#G.....#",
    "######.#",
    "#S.....#",
    "########",
]
MOVES = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)])
GAMMA = 0.9
# The toy's values are small (0.9 ** 20 at the start): one wrong step costs about 0.02 of value far from the goal,
# so the inverse temperature is scaled up to match (the paper's 10 goes with AntMaze's per-step rewards of -1).
BETA = 100.0


class ToyMaze(gym.Env):
    """The grid of ``LAYOUT``; observations are the agent's cell, one-hot (a table, as in the paper's toy)."""

    action_space = gym.spaces.Discrete(4)

    def __init__(self, max_steps: int = 60):
        self.walls = np.array([[cell == "#" for cell in row] for row in LAYOUT])
        self.start = tuple(np.argwhere(np.array([list(row) for row in LAYOUT]) == "S")[0])
        self.goal = tuple(np.argwhere(np.array([list(row) for row in LAYOUT]) == "G")[0])
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.walls.size,), np.float32)
        self.max_steps = max_steps
        self.cells = [tuple(cell) for cell in np.argwhere(~self.walls)]

    def observe(self, cell) -> np.ndarray:
        one_hot = np.zeros(self.walls.size, np.float32)
        one_hot[cell[0] * self.walls.shape[1] + cell[1]] = 1.0
        return one_hot

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.cell = (options or {}).get("cell", self.start)
        self.t = 0
        return self.observe(self.cell), {}

    def move(self, cell, action: int) -> tuple:
        row, col = np.asarray(cell) + MOVES[int(action)]
        return cell if self.walls[row, col] else (int(row), int(col))

    def step(self, action):
        self.cell = self.move(self.cell, action)
        self.t += 1
        reached = self.cell == self.goal
        return self.observe(self.cell), float(reached), reached, self.t >= self.max_steps and not reached, {"success": reached}


def value_iteration(env: ToyMaze) -> dict:
    """:return: The optimal ``V(cell)`` (1 for the step that reaches the goal, discounted by GAMMA)."""
    value = {cell: 0.0 for cell in env.cells}
    for _ in range(200):
        for cell in env.cells:
            if cell != env.goal:
                value[cell] = max(
                    float(env.move(cell, a) == env.goal) + GAMMA * value[env.move(cell, a)] * (env.move(cell, a) != env.goal)
                    for a in range(4)
                )
    return value


def optimal_action(env: ToyMaze, value: dict, cell, rng: np.random.Generator) -> int:
    scores = [float(env.move(cell, a) == env.goal) + GAMMA * value[env.move(cell, a)] for a in range(4)]
    return int(rng.choice(np.flatnonzero(np.isclose(scores, max(scores)))))


def corrupted_data(env: ToyMaze, value: dict, n_episodes: int, steps: int, random_share: float, seed: int) -> dict:
    """D4RL-style arrays of episodes from random cells, each action a suboptimal one with probability ``random_share``."""
    rng = np.random.default_rng(seed)
    columns = {key: [] for key in ("observations", "next_observations", "actions", "rewards", "terminals", "timeouts")}
    for _ in range(n_episodes):
        start = env.cells[rng.integers(len(env.cells))]
        while start == env.goal:
            start = env.cells[rng.integers(len(env.cells))]
        observation, _ = env.reset(options={"cell": start})
        for t in range(steps):
            best = optimal_action(env, value, env.cell, rng)
            action = int(rng.choice([a for a in range(4) if a != best])) if rng.random() < random_share else best
            next_observation, reward, terminated, _, _ = env.step(action)
            for key, item in zip(
                columns, (observation, next_observation, action, reward, terminated, t == steps - 1 and not terminated)
            ):
                columns[key].append(item)
            observation = next_observation
            if terminated:
                break
    return {key: np.array(items) for key, items in columns.items()}


def success_rate(model: IQL, n_episodes: int = 20) -> float:
    env = ToyMaze()
    successes = 0
    for episode in range(n_episodes):
        observation, _ = env.reset(seed=episode)
        done = False
        while not done:
            observation, _, terminated, truncated, info = env.step(model.predict(observation, deterministic=True)[0])
            done = terminated or truncated
        successes += info["success"]
    return successes / n_episodes


def value_map(env: ToyMaze, values: dict) -> np.ndarray:
    grid = np.full(env.walls.shape, np.nan)
    for cell, value in values.items():
        grid[cell] = value
    return grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10_000, help="gradient steps per expectile")
    parser.add_argument("--episodes", type=int, default=500, help="data episodes")
    parser.add_argument("--random-share", type=float, default=0.8, help="probability of a suboptimal action in the data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/figure2")
    args = parser.parse_args()
    th.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = ToyMaze()
    optimal = value_iteration(env)
    data = corrupted_data(env, optimal, args.episodes, 30, args.random_share, args.seed)
    maps, rows = {"optimal (value iteration)": value_map(env, optimal)}, []
    cells = [cell for cell in env.cells if cell != env.goal]
    for expectile in (0.5, 0.9):
        model = IQL("MlpPolicy", env, expectile=expectile, gamma=GAMMA, beta=BETA, seed=args.seed, device="cpu",
                    policy_kwargs={"net_arch": [64, 64]})  # fmt: skip
        model.learn_offline(data, args.steps)
        learned = dict(zip(cells, model.predict_value(np.stack([env.observe(cell) for cell in cells])).tolist()))
        learned[env.goal] = 0.0
        name = f"IQL, expectile {expectile}" + (" (one-step, SARSA-like)" if expectile == 0.5 else "")
        maps[name] = value_map(env, learned)
        error = float(np.mean([abs(learned[cell] - optimal[cell]) for cell in cells]))
        far = [cell for cell in cells if optimal[cell] < GAMMA**8]  # 10 or more steps from the goal
        ratio = float(np.mean([learned[cell] / optimal[cell] for cell in far]))
        rows.append({"expectile": expectile, "mean |V - V*|": round(error, 3), "V / V* beyond 8 steps": round(ratio, 2),
                     "success rate from the start": success_rate(model)})  # fmt: skip
        print(rows[-1], flush=True)
    with open(out / "figure2.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(13, 4.3))
    for axis, (title, grid) in zip(axes, maps.items()):
        image = axis.imshow(grid, cmap="viridis", vmin=0.0, vmax=1.0)
        axis.set_title(title, fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
        axis.text(env.start[1], env.start[0], "S", ha="center", va="center", color="white")
        axis.text(env.goal[1], env.goal[0], "G", ha="center", va="center", color="black")
    figure.colorbar(image, ax=axes, shrink=0.8, label="V(s)")
    figure.suptitle(f"Toy maze, {int(100 * args.random_share)}% suboptimal actions in the data ({args.steps} gradient steps)")
    figure.savefig(out / "figure2.png", dpi=100)
    print(f"Wrote {out / 'figure2.png'} and {out / 'figure2.csv'}")


if __name__ == "__main__":
    main()
