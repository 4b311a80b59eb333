"""
How far along the maze AntMaze policies get: success, and the maze cells still between the ant and the goal.

    python benchmarks/diagnostics/antmaze_progress.py sb3-iql/antmaze/medium-play-v1 runs/offline/runs/*/*/seed0/model.zip \
        [--episodes 20]

The paper's score (100 x success rate) stays at 0 until a policy crosses the whole maze, which on medium and
large takes hundreds of thousands of gradient steps. This measures what comes before: each saved model does
``--episodes`` episodes of the paper's task (the dataset's evaluation env: ``paper_eval_env``'s fixed start
and goal and D4RL's time limit on Gymnasium-Robotics' AntMaze, the D4RL-physics maze's own evaluation env on
``sb3-iql/antmaze-d4rl*`` data; the policy's mean action, as the paper evaluates, or with ``--actions sampled``
its sampled actions, as online finetuning starts, or both), and the table gives its success rate, the shortest path
in maze cells from the start to the goal, from where the ant ended and from the closest it came, how often
it ended fallen over (upside down), how many steps the successful episodes took (against the time limit) and how
many failed episodes reached the goal's cell yet never came within the success radius of that episode's goal (the
maze crossed, the last metre missed) and how many ended upright but standing still (under ``STILL`` m a step over
their last ``LAST_STEPS`` steps: stuck, not lost); ``<out>/antmaze_progress_episodes.csv`` keeps every episode (its
goal, length, first step in the goal's cell, closest distance in metres, end speed) for further questions: a slow
policy reaches the goal's cell late, a lost one early or never; ``--time-limit`` gives the episodes more (or fewer)
steps than the task's own to ask the same. ``--task data`` does the data's own tasks instead: the
maze, starts and goals the data was collected with (on medium and large a random start and goal each episode), the
episode ending at the goal within the same limit; a goal-conditioned policy that succeeds there but not on the paper's
task has learned to walk to goals it saw, not the one long path the paper asks for. Writes ``<out>/antmaze_progress.md``.
"""

import argparse
import csv
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import minari
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the runners' protocol package
from protocol import write_markdown

from sb3_iql import IQL
from sb3_iql.data.goals import evaluation_env
from sb3_iql.data.readers import load_minari_dataset
from sb3_iql.datasets.ant_controller import fell_over
from sb3_iql.datasets.maze import CellPlanner
from sb3_iql.tasks.antmaze import terminating_maze_env
from sb3_iql.tasks.antmaze_d4rl import is_d4rl_antmaze

#: An episode's last steps whose mean x-y step tells a stuck ant (under ``STILL`` metres a step) from a walking one.
LAST_STEPS, STILL = 50, 0.001


def ant_state(env: gym.Env, observation: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:return: The ant's x-y, the episode's goal and the ant's body state (``fell_over``'s input) from an observation."""
    if isinstance(observation, dict):  # Gymnasium-Robotics' AntMaze: the goal is in the observation
        return observation["achieved_goal"], observation["desired_goal"], observation["observation"]
    # The D4RL-physics maze: qpos (x-y first) and qvel as D4RL's, without the goal, which the env keeps
    return observation[:2], env.unwrapped.goal, observation[2:]


def episode_progress(env: gym.Env, planner: CellPlanner, policy: Callable[[Any], np.ndarray], seed: int) -> dict[str, float]:
    """:return: One episode's success, cells to the goal (start, end, closest), fall, length, the first step in the goal's
    cell (-1: never there), closest metres, end speed and goal (the episode's one goal)."""
    observation, _ = env.reset(seed=seed)
    cells, positions, terminated, truncated = [], [], False, False
    while True:
        position, goal, body = ant_state(env, observation)
        positions.append(position)
        cells.append(planner.cells_between(position, goal))
        if terminated or truncated:
            break
        observation, _, terminated, truncated, _ = env.step(policy(observation))
    positions = np.array(positions, dtype=float)
    last_steps = np.diff(positions[-LAST_STEPS - 1 :], axis=0)
    return {
        "success": float(terminated),
        "start": cells[0],
        "end": cells[-1],
        "closest": min(cells),
        "fell": float(fell_over(body)),
        "steps": len(cells) - 1,
        "goal_cell_step": cells.index(0) if 0 in cells else -1,
        "closest_m": float(np.linalg.norm(positions - goal, axis=1).min()),
        "end_speed": float(np.linalg.norm(last_steps, axis=1).mean()),
        "goal_x": float(goal[0]),
        "goal_y": float(goal[1]),
    }


def data_task_env(dataset: minari.MinariDataset) -> gym.Env:
    """:return: The dataset's collection env (its maze, starts and goals), ending at the goal within D4RL's limit."""
    if is_d4rl_antmaze(dataset):
        raise SystemExit("--task data is for Gymnasium-Robotics' AntMaze data; a D4RL-physics maze has the paper's task only.")
    collection = dataset.recover_environment()
    try:
        return terminating_maze_env(collection, collection.unwrapped.maze.maze_map)
    finally:
        collection.close()


def with_time_limit(env: gym.Env, steps: int) -> gym.Env:
    """:return: ``env`` made anew from its spec with ``steps`` as its time limit (``env`` is closed)."""
    limited = gym.make(env.spec, max_episode_steps=steps)
    env.close()
    return limited


#: Per ``--task``: the env the episodes are done in, its words in the table, and the table's file.
TASKS = {
    "paper": (lambda dataset: evaluation_env(dataset)[0], "the paper's task", "antmaze_progress.md"),
    "data": (
        data_task_env,
        "the data's own tasks (its starts and goals, ending at the goal)",
        "antmaze_progress_data_task.md",
    ),
}


#: Per ``--actions``: whether each mode acts deterministically (the policy's mean action) or samples its actions.
ACTIONS = {"mean": [True], "sampled": [False], "both": [True, False]}


def mode_episodes(
    env: gym.Env, planner: CellPlanner, model: IQL, label: str, n_episodes: int, deterministic: bool
) -> list[dict[str, Any]]:
    """:return: The episodes of one model acting with its mean action (``deterministic``) or sampled ones, labelled."""
    policy = lambda observation: model.predict(observation, deterministic=deterministic)[0]  # noqa: E731
    actions = "mean" if deterministic else "sampled"
    seeds = range(1_000, 1_000 + n_episodes)
    return [
        {"model": label, "actions": actions, "seed": seed, **episode_progress(env, planner, policy, seed)} for seed in seeds
    ]


def mode_row(rows: list[dict[str, Any]]) -> str:
    """:return: The table's row of one model and action mode, from its episodes (``mode_episodes``)."""
    means = {key: np.mean([row[key] for row in rows]) for key in ("success", "start", "end", "closest", "fell")}
    success_steps = [row["steps"] for row in rows if row["success"]]
    failures = [row for row in rows if not row["success"]]
    in_goal_cell = sum(row["closest"] == 0 for row in failures)
    standing_still = sum(not row["fell"] and row["end_speed"] < STILL for row in failures)
    steps = f"{np.mean(success_steps):.0f}" if success_steps else "-"
    return (
        f"| `{rows[0]['model']}` | {rows[0]['actions']} | {100 * means['success']:.0f}% "
        f"| {means['start']:.1f} | {means['end']:.1f} | {means['closest']:.1f} | {100 * means['fell']:.0f}% "
        f"| {steps} | {in_goal_cell} of {len(failures)} | {standing_still} of {len(failures)} |"
    )


def model_episodes(env: gym.Env, planner: CellPlanner, model_path: str, n_episodes: int, actions: str) -> list[list[dict]]:
    """:return: One saved model's episodes, one list per action mode of ``actions`` (the same episode seeds)."""
    model = IQL.load(model_path, device="cpu")
    return [mode_episodes(env, planner, model, model_path, n_episodes, deterministic) for deterministic in ACTIONS[actions]]


def write_episodes(path: Path, modes: list[list[dict[str, Any]]]) -> None:
    """Write every episode of every model and action mode to the CSV ``path``."""
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, list(modes[0][0]))
        writer.writeheader()
        writer.writerows(row for episodes in modes for row in episodes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="the AntMaze Minari dataset the models learned from")
    parser.add_argument("models", nargs="+", help="saved IQL models (.zip)")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--task", choices=TASKS, default="paper", help="the paper's task, or the data's own starts and goals")
    parser.add_argument("--actions", choices=ACTIONS, default="mean", help="the policy's mean action, sampled ones, or both")
    parser.add_argument(
        "--time-limit",
        type=int,
        help="steps an episode may take (default: the task's own, D4RL's); a longer one tells a slow policy from a lost one",
    )
    parser.add_argument("--out", default="runs/antmaze_progress")
    args = parser.parse_args()
    if args.time_limit is not None and args.time_limit < 1:
        raise SystemExit(
            f"--time-limit {args.time_limit}: give a positive number of steps, or leave it out for the task's own."
        )
    missing = [model for model in args.models if not Path(model).is_file()]
    if missing:
        raise SystemExit(f"No saved model at {', '.join(missing)}: pass the .zip files that IQL.save wrote.")
    make_env, task, file_name = TASKS[args.task]
    env = make_env(load_minari_dataset(args.dataset))
    if args.time_limit is not None:
        env = with_time_limit(env, args.time_limit)
    planner = CellPlanner(env.unwrapped.maze)
    modes = [
        episodes for model in args.models for episodes in model_episodes(env, planner, model, args.episodes, args.actions)
    ]
    lines = [
        f"`{args.dataset}`, {args.episodes} episodes of {task} per model and action mode.",
        "",
        f"Time limit {env.spec.max_episode_steps} steps. Failures that reached the goal's cell: they never came within the",
        f"success radius of that episode's goal. Failures standing still: upright, under {STILL} m a step over their last",
        f"{LAST_STEPS} steps.",
        "",
        "| model | actions | success | cells to the goal: start | end | closest | ended fallen over "
        "| steps of successes | failures that reached the goal's cell | failures standing still |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(mode_row(episodes) for episodes in modes),
    ]
    env.close()
    write_markdown(args.out, file_name, lines)
    write_episodes(Path(args.out) / file_name.replace(".md", "_episodes.csv"), modes)


if __name__ == "__main__":
    main()
