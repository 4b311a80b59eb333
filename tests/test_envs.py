"""Every env and wrapper sb3-iql ships passes SB3's ``check_env``, as SB3's suites check theirs."""

import gymnasium as gym
import pytest
from conftest import NestedGoalEnv
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env

from sb3_iql import FlattenNestedDict, RecordSuccess
from sb3_iql.common.wrappers import BinaryReward
from sb3_iql.datasets.adroit import make_binary_env
from sb3_iql.datasets.ant_controller import make_maze_training_env, make_training_env
from sb3_iql.tasks.antmaze import paper_eval_env

ENVS = {
    "FlattenNestedDict": lambda: FlattenNestedDict(NestedGoalEnv()),
    "RecordSuccess": lambda: RecordSuccess(gym.make("PointMaze_UMaze-v3", max_episode_steps=20)),
    "BinaryReward": lambda: make_binary_env("pen"),
}
# The goal-reaching ant's training envs hide AntMaze's goals behind Box features, which SB3's check_env takes for a
# malformed GoalEnv (it looks for compute_reward on the unwrapped env): Gymnasium's own checker checks them.
ANT_TRAINING_ENVS = {
    "GoalReachingAnt": lambda: make_training_env(max_episode_steps=20),
    "MazeWalkingAnt": lambda: make_maze_training_env("AntMaze_UMaze-v4", max_episode_steps=20),
}


@pytest.mark.parametrize("name", ENVS)
def test_shipped_envs_pass_sb3_check_env(name):
    env = ENVS[name]()
    check_env(env, warn=True, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("name", ANT_TRAINING_ENVS)
def test_the_ant_training_envs_pass_gymnasiums_check_env(name):
    env = ANT_TRAINING_ENVS[name]()
    gymnasium_check_env(env, skip_render_check=True)
    env.close()


def test_the_paper_antmaze_eval_env_passes_sb3_check_env(umaze_dataset):
    env = RecordSuccess(paper_eval_env(umaze_dataset))
    check_env(env, warn=True, skip_render_check=True)


def test_binary_reward_is_zero_on_success_else_minus_one():
    env = make_binary_env("pen")
    assert any(isinstance(wrapper, BinaryReward) for wrapper in _chain(env))
    env.reset(seed=0)
    _, reward, *_, info = env.step(env.action_space.sample())
    assert reward == (0.0 if info["success"] else -1.0)


def _chain(env: gym.Env) -> list[gym.Env]:
    chain = [env]
    while hasattr(chain[-1], "env"):
        chain.append(chain[-1].env)
    return chain
