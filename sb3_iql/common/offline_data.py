"""Where the offline data functions lived before ``sb3_iql.data``; kept so that code importing them still runs."""

from sb3_iql.data.readers import DatasetLike, OfflineData, dataset_transitions, load_minari_dataset, load_offline_data
from sb3_iql.data.scores import normalized_score
from sb3_iql.data.transitions import Transitions
from sb3_iql.data.writers import write_minari_dataset

__all__ = [
    "DatasetLike",
    "OfflineData",
    "Transitions",
    "dataset_transitions",
    "load_minari_dataset",
    "load_offline_data",
    "normalized_score",
    "write_minari_dataset",
]
