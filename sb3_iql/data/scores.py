"""Scores: returns on the D4RL normalized scale of a dataset's reference scores."""

import minari
import numpy as np

from sb3_iql.data.goals import is_maze_task
from sb3_iql.data.readers import dataset_transitions


def normalized_score(dataset: minari.MinariDataset, returns: np.ndarray) -> np.ndarray | None:
    """
    :return: D4RL-style normalized scores, ``100 * (R - ref_min) / (ref_max - ref_min)``,
        or None when the dataset has no reference scores
    """
    metadata = dataset.storage.metadata
    if metadata.get("ref_min_score") is None or metadata.get("ref_max_score") is None:
        return None
    return 100.0 * minari.get_normalized_score(dataset, np.asarray(returns, dtype=np.float64))


def episode_scores(dataset: minari.MinariDataset) -> np.ndarray | None:
    """:return: The normalized score of each of the dataset's episodes, in order; None without reference scores."""
    return normalized_score(dataset, dataset_transitions(dataset).episode_returns)


def data_score(dataset: minari.MinariDataset) -> float | None:
    """
    :return: The mean normalized score of the dataset's own episodes, on the scale its policies are scored on; None
        without reference scores, and for AntMaze, scored by the success rate of terminating episodes its continuing
        ones lack (an ant that stays at the goal sums reward 1 a step)
    """
    if is_maze_task(dataset):
        return None
    scores = episode_scores(dataset)
    return None if scores is None else float(scores.mean())
