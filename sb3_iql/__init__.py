"""sb3-iql: Implicit Q-Learning for Stable-Baselines3, trained offline from Minari datasets and finetuned online."""

from sb3_iql.common.buffers import TensorReplayBuffer
from sb3_iql.common.callbacks import IQLEvalCallback
from sb3_iql.common.wrappers import FlattenNestedDict, RecordSuccess
from sb3_iql.data.readers import load_offline_data
from sb3_iql.data.writers import write_minari_dataset
from sb3_iql.iql import IQL, CnnPolicy, IQLPolicy, MlpPolicy, MultiInputPolicy

__version__ = "0.2.0"

__all__ = [
    "IQL",
    "CnnPolicy",
    "FlattenNestedDict",
    "IQLEvalCallback",
    "IQLPolicy",
    "MlpPolicy",
    "MultiInputPolicy",
    "RecordSuccess",
    "TensorReplayBuffer",
    "load_offline_data",
    "write_minari_dataset",
]
