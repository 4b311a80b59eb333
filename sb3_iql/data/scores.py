"""Scores: returns on the D4RL normalized scale of a dataset's reference scores."""

import minari
import numpy as np

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
