"""A small Minari dataset the examples build for themselves: Pendulum swing-ups by a noisy hand-written controller."""

from functools import partial

import gymnasium as gym
import minari
import numpy as np

from sb3_iql.common.episodes import rollout_episode
from sb3_iql.common.offline_data import normalized_score

DATASET_ID = "sb3-iql/pendulum/noisy-swingup-v0"
# Average returns of a uniform random policy and of the noise-free controller (200-step episodes).
REF_MIN_SCORE, REF_MAX_SCORE = -1190.0, -148.0


def swing_up(observation: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Pump energy until near the top, then balance with a PD controller; plus Gaussian noise."""
    cos_theta, sin_theta, theta_dot = observation
    theta = np.arctan2(sin_theta, cos_theta)
    if cos_theta > 0.85:
        torque = -10.0 * theta - 2.0 * theta_dot
    else:
        energy = 0.5 * theta_dot**2 + 10.0 * (cos_theta - 1.0)
        torque = 2.0 * np.sign(theta_dot * -energy + 1e-6)
    return np.clip([torque + noise * rng.normal()], -2.0, 2.0).astype(np.float32)


def data_score(dataset: minari.MinariDataset) -> float:
    """:return: The mean normalized score of the dataset's own episodes."""
    returns = np.array([episode.rewards.sum() for episode in dataset.iterate_episodes()])
    return float(normalized_score(dataset, returns).mean())


def make_dataset(n_episodes: int = 60, seed: int = 0) -> minari.MinariDataset:
    """Build (or load, if present) the dataset: episodes at noise levels from 0.5 to 3 (medium to poor)."""
    if DATASET_ID in minari.list_local_datasets():
        return minari.load_dataset(DATASET_ID)
    env = gym.make("Pendulum-v1")
    rng = np.random.default_rng(seed)
    episodes = [
        rollout_episode(
            env, partial(swing_up, rng=rng, noise=np.interp(episode, [0, n_episodes - 1], [0.5, 3.0])), seed=seed + episode
        )
        for episode in range(n_episodes)
    ]
    return minari.create_dataset_from_buffers(
        DATASET_ID,
        episodes,
        env=env,
        algorithm_name="noisy energy-pumping swing-up controller",
        author="sb3-iql",
        author_email="sb3-iql@users.noreply.github.com",
        code_permalink="examples/pendulum_data.py",
        description="Pendulum-v1 swing-ups by a hand-written controller with Gaussian action noise from 0.5 to 3.",
        ref_min_score=REF_MIN_SCORE,
        ref_max_score=REF_MAX_SCORE,
    )


if __name__ == "__main__":
    dataset = make_dataset()
    print(
        f"{DATASET_ID}: {dataset.total_episodes} episodes, {dataset.total_steps} steps, normalized score {data_score(dataset):.1f}"
    )
