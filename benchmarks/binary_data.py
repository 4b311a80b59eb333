"""
How good the Adroit binary tasks' data already is, on the published scale: the room online finetuning has.

    python benchmarks/binary_data.py [--tasks pen door relocate] [--expert-episodes 50]

For each task, the normalized score (100 x (return + T) / T, the share of the episode spent solved) of the
built dataset's episodes, of its demonstrations and BC rollouts apart, and of the DAPG expert (mean action and
sampled) in the same env, beside the paper's IQL offline -> online. A dataset that is not built is
left out of its row. Writes ``<out>/binary_data.md``.
"""

import argparse

import numpy as np
from protocol import PAPER, episode_scores, write_markdown

from sb3_iql.data.episodes import rollout_episodes
from sb3_iql.data.readers import load_minari_dataset
from sb3_iql.datasets.adroit import (
    AWAC_DEMOS,
    BINARY_TASKS,
    binary_dataset_id,
    binary_demos,
    binary_reference_scores,
    load_expert,
    make_binary_env,
)


def demo_and_rollout_scores(task: str) -> tuple[np.ndarray, np.ndarray] | None:
    """:return: The normalized scores of the built dataset's demonstrations (its first episodes) and BC rollouts."""
    try:
        dataset = load_minari_dataset(binary_dataset_id(task))
    except (ValueError, FileNotFoundError):
        return None
    scores = episode_scores(dataset)
    n_demo_episodes = len(binary_demos(task, AWAC_DEMOS, source=None, seed=0, progress=False))  # pen's are cut in two
    return scores[:n_demo_episodes], scores[n_demo_episodes:]


def expert_score(task: str, n_episodes: int, deterministic: bool) -> float:
    env = make_binary_env(task)
    episodes = rollout_episodes(env, load_expert(task, deterministic=deterministic), n_episodes, seed=10_000, progress=False)
    low, high = binary_reference_scores(task)  # the datasets' reference scores: the same scale
    return float(np.mean([100 * (np.sum(episode.rewards) - low) / (high - low) for episode in episodes]))


def row(task: str, n_expert_episodes: int) -> str:
    scores = demo_and_rollout_scores(task)
    data = ["-", "-", "-"]
    if scores is not None:
        demos, rollouts = scores
        data = [f"{np.concatenate(scores).mean():.1f}", f"{demos.mean():.1f}", f"{rollouts.mean():.1f}"]
    experts = [f"{expert_score(task, n_expert_episodes, deterministic):.1f}" for deterministic in (True, False)]
    offline, online = PAPER["table2"][f"{task}-binary-v0"]
    return f"| {task}-binary | " + " | ".join([*data, *experts, f"{offline:.1f} → {online:.1f}"]) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", choices=BINARY_TASKS, default=list(BINARY_TASKS))
    parser.add_argument("--expert-episodes", type=int, default=50, help="episodes per DAPG expert measurement")
    parser.add_argument("--out", default="runs/binary_data")
    args = parser.parse_args()
    lines = [
        "| task | data: all episodes | demonstrations | BC rollouts | DAPG expert (mean action) | DAPG expert (sampled) "
        "| paper: IQL offline → online |",
        "|---|---|---|---|---|---|---|",
        *(row(task, args.expert_episodes) for task in args.tasks),
    ]
    write_markdown(args.out, "binary_data.md", lines)


if __name__ == "__main__":
    main()
