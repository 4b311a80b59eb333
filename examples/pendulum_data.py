"""
A small Minari dataset the examples build for themselves: Pendulum-v1 with mixed-quality episodes.

Half the episodes are swing-ups by a hand-written controller (with a little action noise), half are
uniformly random actions: the kind of logged data where offline RL matters. Behaviour cloning copies
the mixture; IQL weighs each logged action by its advantage and recovers the controller.
"""

from functools import partial

import gymnasium as gym
import minari
import numpy as np

from sb3_iql.data.episodes import rollout_episode
from sb3_iql.data.scores import data_score

DATASET_ID = "sb3-iql/pendulum/mixed-v1"
# Average returns of a uniform random policy and of the noise-free controller (200-step episodes).
REF_MIN_SCORE, REF_MAX_SCORE = -1190.0, -148.0
GOOD_NOISE = 0.3


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


def random_torque(_: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(-2.0, 2.0, size=1).astype(np.float32)


def make_dataset(n_episodes: int = 60, seed: int = 0) -> minari.MinariDataset:
    """Build (or load, if present) the dataset: even episodes by the controller, odd ones random."""
    if DATASET_ID in minari.list_local_datasets():
        return minari.load_dataset(DATASET_ID)
    env = gym.make("Pendulum-v1")
    rng = np.random.default_rng(seed)
    policies = [partial(swing_up, rng=rng, noise=GOOD_NOISE), partial(random_torque, rng=rng)]
    episodes = [rollout_episode(env, policies[episode % 2], seed=seed + episode) for episode in range(n_episodes)]
    return minari.create_dataset_from_buffers(
        DATASET_ID,
        episodes,
        env=env,
        eval_env=env,
        algorithm_name="swing-up controller (half the episodes) and random actions (the other half)",
        author="sb3-iql",
        author_email="sb3-iql@users.noreply.github.com",
        code_permalink="examples/pendulum_data.py",
        description=f"Pendulum-v1: swing-ups by a hand-written controller (action noise {GOOD_NOISE}) and random episodes, half each.",
        ref_min_score=REF_MIN_SCORE,
        ref_max_score=REF_MAX_SCORE,
    )


if __name__ == "__main__":
    dataset = make_dataset()
    print(
        f"{DATASET_ID}: {dataset.total_episodes} episodes, {dataset.total_steps} steps, normalized score {data_score(dataset):.1f}"
    )
