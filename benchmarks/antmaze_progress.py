"""
How far along the maze AntMaze policies get: success, and the maze cells still between the ant and the goal.

    python benchmarks/antmaze_progress.py sb3-iql/antmaze/medium-play-v1 runs/offline/runs/*/*/seed0/model.zip \
        [--episodes 20]

The paper's score (100 x success rate) stays at 0 until a policy crosses the whole maze, which on medium and
large takes hundreds of thousands of gradient steps. This measures what comes before: each saved model does
``--episodes`` episodes of the paper's task (``paper_eval_env``: fixed start and goal, D4RL's time limit,
deterministic actions), and the table gives its success rate, the shortest path in maze cells from the
start to the goal, from where the ant ended and from the closest it came, and how often it ended fallen
over. ``--task data`` does the data's own tasks instead: the maze, starts and goals the data was collected
with (on medium and large a random start and goal each episode), the episode ending at the goal within the
same limit; a goal-conditioned policy that succeeds there but not on the paper's task has learned to walk to
goals it saw, not the one long path the paper asks for. Writes ``<out>/antmaze_progress.md``.
"""

import argparse
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np
from minari.data_collector.episode_buffer import EpisodeBuffer
from protocol import write_markdown

from sb3_iql import IQL
from sb3_iql.data.episodes import rollout_episodes
from sb3_iql.data.readers import load_minari_dataset
from sb3_iql.datasets.ant_controller import fell_over
from sb3_iql.datasets.maze import CellPlanner
from sb3_iql.tasks.antmaze import paper_eval_env, terminating_maze_env


def progress(planner: CellPlanner, episode: EpisodeBuffer) -> dict[str, float]:
    """:return: One episode's success, cells to the goal (at the start, the end and the closest) and fall."""
    observations = episode.observations
    goal = observations["desired_goal"][0]
    cells = [planner.cells_between(position, goal) for position in observations["achieved_goal"]]
    return {
        "success": float(episode.terminations[-1]),
        "start": cells[0],
        "end": cells[-1],
        "closest": min(cells),
        "fell": float(fell_over(observations["observation"][-1])),
    }


def data_task_env(dataset: minari.MinariDataset) -> gym.Env:
    """:return: The dataset's collection env (its maze, starts and goals), ending at the goal within D4RL's limit."""
    collection = dataset.recover_environment()
    try:
        return terminating_maze_env(collection, collection.unwrapped.maze.maze_map)
    finally:
        collection.close()


#: Per ``--task``: the env the episodes are done in, its words in the table, and the table's file.
TASKS = {
    "paper": (paper_eval_env, "the paper's task", "antmaze_progress.md"),
    "data": (
        data_task_env,
        "the data's own tasks (its starts and goals, ending at the goal)",
        "antmaze_progress_data_task.md",
    ),
}


def model_row(env: gym.Env, planner: CellPlanner, model_path: str, n_episodes: int) -> str:
    model = IQL.load(model_path, device="cpu")
    episodes = rollout_episodes(
        env, lambda observation: model.predict(observation, deterministic=True)[0], n_episodes, seed=1_000, progress=False
    )
    rows = [progress(planner, episode) for episode in episodes]
    means = {key: np.mean([row[key] for row in rows]) for key in rows[0]}
    return (
        f"| `{model_path}` | {100 * means['success']:.0f}% | {means['start']:.1f} | {means['end']:.1f} "
        f"| {means['closest']:.1f} | {100 * means['fell']:.0f}% |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="the AntMaze Minari dataset the models learned from")
    parser.add_argument("models", nargs="+", help="saved IQL models (.zip)")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--task", choices=TASKS, default="paper", help="the paper's task, or the data's own starts and goals")
    parser.add_argument("--out", default="runs/antmaze_progress")
    args = parser.parse_args()
    missing = [model for model in args.models if not Path(model).is_file()]
    if missing:
        raise SystemExit(f"No saved model at {', '.join(missing)}: pass the .zip files that IQL.save wrote.")
    make_env, task, file_name = TASKS[args.task]
    env = make_env(load_minari_dataset(args.dataset))
    planner = CellPlanner(env.unwrapped.maze)
    lines = [
        f"`{args.dataset}`, {args.episodes} episodes of {task} per model, deterministic actions.",
        "",
        "| model | success | cells to the goal: start | end | closest | ended fallen over |",
        "|---|---|---|---|---|---|",
        *(model_row(env, planner, model, args.episodes) for model in args.models),
    ]
    env.close()
    write_markdown(args.out, file_name, lines)


if __name__ == "__main__":
    main()
