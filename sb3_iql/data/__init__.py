"""
Offline data, from whatever a user has to what a replay buffer stores. One way through:

- ``readers``: a Minari id, folder or dataset, a D4RL-style dict of arrays or an SB3 replay buffer
  -> ``OfflineData`` (``transitions``: the data model, one ``episode_returns``, finiteness);
- ``goals``: the paper's goal-reaching task as a transform of episodes (AntMaze), and the one choice
  of the env a dataset is evaluated in;
- ``preparation``: the checks against a model (spaces, capacity) and actions in the policy's scale;
- ``spaces``: nested Dicts flattened, and the space check; ``episodes``: Minari episodes built and cut;
- ``writers``: data out as a Minari dataset; ``scores``: D4RL normalized scores.

It imports only ``sb3_iql.tasks`` below it.
"""

from sb3_iql.data.readers import DatasetLike, OfflineData, dataset_transitions, load_minari_dataset, load_offline_data
from sb3_iql.data.transitions import Transitions, episode_returns
from sb3_iql.data.writers import write_minari_dataset

__all__ = [
    "DatasetLike",
    "OfflineData",
    "Transitions",
    "dataset_transitions",
    "episode_returns",
    "load_minari_dataset",
    "load_offline_data",
    "write_minari_dataset",
]
