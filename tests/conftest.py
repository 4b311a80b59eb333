import os
import warnings
from collections.abc import Callable

import gymnasium as gym
import gymnasium_robotics
import minari
import numpy as np
import pytest
import torch as th
from minari.data_collector.episode_buffer import EpisodeBuffer

from sb3_iql import IQL
from sb3_iql.data import episodes
from sb3_iql.datasets.antmaze import build_antmaze
from sb3_iql.datasets.recording import minari_root as minari_root_of
from sb3_iql.datasets.recording import shared_data_dir

gym.register_envs(gymnasium_robotics)
th.set_num_threads(1)
#: The network size of the small models tests train.
SMALL = {"net_arch": [32, 32]}
warnings.filterwarnings("ignore", module="minari")


def needs_shared(relative: str) -> None:
    """Skip, saying why, where the real source file ``relative`` is not in ``../shared/data`` (a user's clone has none)."""
    if not (shared_data_dir() / relative).is_file():
        pytest.skip(f"real source data {relative} is not in {shared_data_dir()} (set SB3_IQL_SHARED_DATA)")


@pytest.fixture(autouse=True)
def minari_root(tmp_path, monkeypatch):
    """Every test gets its own empty Minari datasets folder and no network."""
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return root


def rollout_episodes(env: gym.Env, n_episodes: int, policy: Callable | None = None, seed: int = 0) -> list[EpisodeBuffer]:
    """Roll out ``policy`` (random if None) into Minari episode buffers."""
    env.action_space.seed(seed)
    return episodes.rollout_episodes(
        env, policy or (lambda _: env.action_space.sample()), n_episodes, seed=seed, progress=False
    )


@pytest.fixture(scope="session")
def umaze_dataset(tmp_path_factory) -> minari.MinariDataset:
    """sb3-iql's AntMaze umaze recipe at 1,500 steps: two 700-step episodes (the ant reaches the goal and sits there)
    and a short third, in a folder of its own; the shipped actor at full gain, whose faster gait reaches the goal's
    centre within these few steps."""
    root = tmp_path_factory.mktemp("antmaze")
    with minari_root_of(root):
        dataset = build_antmaze("umaze", n_transitions=1500, reference_episodes=1, progress=False, action_gain=1.0)
    return minari.MinariDataset(dataset.storage.data_path)


@pytest.fixture
def pendulum_dataset() -> minari.MinariDataset:
    """8 random Pendulum episodes of 50 steps: Box observations, actions in [-2, 2]."""
    env = gym.make("Pendulum-v1", max_episode_steps=50)
    return minari.create_dataset_from_buffers(
        "tests/pendulum/random-v0", rollout_episodes(env, 8), env=env, ref_min_score=-1200.0, ref_max_score=-150.0
    )


@pytest.fixture
def pointmaze_dataset() -> minari.MinariDataset:
    """4 random PointMaze episodes of 40 steps: Dict observations."""
    env = gym.make("PointMaze_UMaze-v3", max_episode_steps=40)
    return minari.create_dataset_from_buffers(
        "tests/pointmaze/random-v0", rollout_episodes(env, 4), env=env, ref_min_score=0.0, ref_max_score=40.0
    )


def two_step_episodes(n_episodes: int, seed: int = 0) -> list[EpisodeBuffer]:
    """
    A two-step MDP: from s0 any action leads to s1 with reward 0; at s1 the logged actions are
    +0.8 (reward 1) and -0.8 (reward 0), half each, then the episode terminates.
    The best in-dataset return is 1 from s1 and gamma from s0; the average is half that.
    """
    rng = np.random.default_rng(seed)
    s0, s1, end = [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]
    episodes = []
    for _ in range(n_episodes):
        good = rng.random() < 0.5
        episodes.append(
            EpisodeBuffer(
                observations=np.array([s0, s1, end], dtype=np.float32),
                actions=np.array([[rng.uniform(-1, 1)], [0.8 if good else -0.8]], dtype=np.float32),
                rewards=np.array([0.0, 1.0 if good else 0.0]),
                terminations=np.array([False, True]),
                truncations=np.array([False, False]),
            )
        )
    return episodes


@pytest.fixture
def two_step_dataset() -> minari.MinariDataset:
    space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    return minari.create_dataset_from_buffers(
        "tests/two-step-v0",
        two_step_episodes(200),
        observation_space=space,
        action_space=gym.spaces.Box(-1.0, 1.0, (1,), np.float32),
    )


def pytest_report_header(config):
    return f"MINARI datasets: per-test temp dirs; torch {th.__version__}; threads {th.get_num_threads()}; cwd {os.getcwd()}"


class NestedGoalEnv(gym.Env):
    """
    Goal dicts nested inside the observation, as Minari's FrankaKitchen datasets have them: a point on a
    line whose ``achieved_goal`` / ``desired_goal`` are dicts of named sub-goals. Reward: minus the distance.
    """

    def __init__(self, max_steps: int = 10):
        goals = gym.spaces.Dict(
            {"kettle": gym.spaces.Box(-5, 5, (2,), np.float64), "microwave": gym.spaces.Box(-5, 5, (1,), np.float64)}
        )
        self.observation_space = gym.spaces.Dict(
            {"observation": gym.spaces.Box(-5, 5, (3,), np.float64), "achieved_goal": goals, "desired_goal": goals}
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.max_steps = max_steps

    def _obs(self) -> dict:
        goal = {"kettle": np.array([self.goal, -self.goal]), "microwave": np.array([self.goal])}
        achieved = {"kettle": np.array([self.x, -self.x]), "microwave": np.array([self.x])}
        return {"observation": np.array([self.x, self.goal, self.t / 10.0]), "achieved_goal": achieved, "desired_goal": goal}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.goal, self.t = 0.0, float(self.np_random.uniform(-2, 2)), 0
        return self._obs(), {}

    def step(self, action):
        self.x = float(np.clip(self.x + 0.5 * float(action[0]), -5, 5))
        self.t += 1
        return self._obs(), -abs(self.x - self.goal), False, self.t >= self.max_steps, {}


@pytest.fixture
def nested_dataset() -> minari.MinariDataset:
    """6 random episodes of 10 steps in ``NestedGoalEnv``: nested Dict observations."""
    env = NestedGoalEnv()
    return minari.create_dataset_from_buffers(
        "tests/nested/random-v0",
        rollout_episodes(env, 6),
        observation_space=env.observation_space,
        action_space=env.action_space,
    )


def small_iql(env, **kwargs) -> IQL:
    """An IQL with small networks and batches on the CPU (seed 0 unless given), for tests."""
    kwargs.setdefault("policy_kwargs", dict(SMALL))
    kwargs.setdefault("batch_size", 32)
    return IQL(kwargs.pop("policy", "MlpPolicy"), env, seed=kwargs.pop("seed", 0), device="cpu", **kwargs)
