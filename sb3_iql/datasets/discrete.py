"""
Mixed-quality data for Discrete-action tasks: half the transitions from a good controller, half from a
bad one, the kind of logged data where offline RL beats behaviour cloning.

- ``cartpole-mixed`` (``CartPole-v1``): the good controller pushes the cart toward where the pole leans
  (a linear rule on angle, angular velocity, position and velocity; it balances for all 500 steps); the
  bad one always pushes left (the pole falls within about 10 steps).
- ``acrobot-mixed`` (``Acrobot-v1``): the good controller applies torque along the second joint's angular
  velocity (pumping energy; it swings up in about 80 steps); the bad one applies it against that velocity
  (damping: the links stay down for the whole 500 steps).

Each controller acts at random with probability ``epsilon`` (0.1), as logged systems explore. The bad
policy is biased, not uniform: behaviour cloning's most likely action then follows it wherever the two
policies visit the same states, while IQL weighs each logged action by its advantage. Reference scores:
the bad policy's mean return (0) and the good controller's without exploration (100).
"""

from collections.abc import Callable

import gymnasium as gym
import minari
import numpy as np

from sb3_iql.data.episodes import rollout_episode, rollout_episodes
from sb3_iql.datasets.recording import write_dataset

Controller = Callable[[np.ndarray], int]


def cartpole_good(observation: np.ndarray) -> int:
    x, x_dot, theta, theta_dot = observation
    return int(theta + 0.5 * theta_dot + 0.01 * x + 0.1 * x_dot > 0)


def acrobot_good(observation: np.ndarray) -> int:
    return 2 if observation[5] > 0 else 0


TASKS: dict[str, dict] = {
    "cartpole": {"env_id": "CartPole-v1", "good": cartpole_good, "bad": lambda observation: 0},
    "acrobot": {"env_id": "Acrobot-v1", "good": acrobot_good, "bad": lambda observation: 2 - acrobot_good(observation)},
}
REFERENCE_EPISODES = 20


def exploring(controller: Controller, n_actions: int, epsilon: float, rng: np.random.Generator) -> Controller:
    """:return: ``controller`` that takes a uniformly random action with probability ``epsilon``."""
    return lambda observation: int(rng.integers(n_actions)) if rng.random() < epsilon else controller(observation)


def _check_task(task: str) -> dict:
    if task not in TASKS:
        raise ValueError(f"Unknown discrete task '{task}': choose one of {', '.join(TASKS)}.")
    return TASKS[task]


def collect(task: str, n_transitions: int, epsilon: float = 0.1, seed: int = 0) -> list:
    """:return: Episodes of the good and the bad controller, ``n_transitions / 2`` transitions each (the last cut)."""
    spec = _check_task(task)
    env = gym.make(spec["env_id"])
    rng = np.random.default_rng(seed)
    episodes, episode_seed = [], seed
    for controller in (spec["good"], spec["bad"]):
        policy = exploring(controller, int(env.action_space.n), epsilon, rng)
        collected = 0
        while collected < n_transitions // 2:
            episode = rollout_episode(env, policy, seed=episode_seed, max_steps=n_transitions // 2 - collected)
            episodes.append(episode)
            collected += len(episode.actions)
            episode_seed += 1
    env.close()
    return episodes


def mean_return(task: str, controller: Controller, n_episodes: int = REFERENCE_EPISODES, seed: int = 10_000) -> float:
    """:return: The controller's mean return over ``n_episodes`` episodes of the task."""
    env = gym.make(_check_task(task)["env_id"])
    episodes = rollout_episodes(env, controller, n_episodes, seed=seed, progress=False)
    env.close()
    return float(np.mean([np.sum(episode.rewards) for episode in episodes]))


def build_discrete(
    task: str, n_transitions: int = 20_000, epsilon: float = 0.1, seed: int = 0, overwrite: bool = False
) -> minari.MinariDataset:
    """
    Build ``sb3-iql/{task}/mixed-v0`` (module docstring).

    :param task: cartpole or acrobot
    :param n_transitions: Transitions in all, half from each controller
    :param epsilon: Probability of a random action in each step of either controller
    :param seed: Seed of the resets and the exploration
    """
    spec = _check_task(task)
    episodes = collect(task, n_transitions, epsilon, seed)
    return write_dataset(
        f"sb3-iql/{task}/mixed-v0",
        episodes,
        gym.make(spec["env_id"]),
        ref_min_score=mean_return(task, spec["bad"]),
        ref_max_score=mean_return(task, spec["good"]),
        description=(
            f"{spec['env_id']}: {n_transitions} transitions, half from a good hand-written controller and half from a "
            f"bad one (sb3_iql.datasets.discrete), each acting at random with probability {epsilon}. Reference scores: "
            "the bad policy's mean return (0) and the good controller's without random actions (100)."
        ),
        algorithm_name="hand-written good and bad controllers with epsilon-random actions",
        overwrite=overwrite,
    )
