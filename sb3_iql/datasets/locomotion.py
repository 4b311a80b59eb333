"""
MuJoCo locomotion datasets with D4RL's recipe, trained and rolled out here with SB3's SAC.

D4RL trains SAC on each task; "expert" is the final policy, "medium" a policy that reaches about
a third of the expert's score, "medium-replay" every transition in the replay buffer until the
medium policy was reached, "random" a uniform random policy, and "medium-expert" the medium and
expert sets together. 1M SAC steps and 1M transitions per set make the full-size sets (hours on a
GPU machine); tests build tiny ones with a few hundred steps.
"""

import copy
from typing import Any

import gymnasium as gym
import minari
import numpy as np
from minari.data_collector.episode_buffer import EpisodeBuffer
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_iql.data.episodes import Policy, rollout_transitions, split_episodes
from sb3_iql.datasets.recording import write_dataset

ENV_IDS = {"hopper": "Hopper-v5", "halfcheetah": "HalfCheetah-v5", "walker2d": "Walker2d-v5"}
# d4rl/infos.py: random and expert returns behind the locomotion normalized scores.
D4RL_REF_SCORES = {"hopper": (-20.272305, 3234.3), "halfcheetah": (-280.178953, 12135.0), "walker2d": (1.629008, 4592.3)}
LEVELS = ("random", "medium", "medium-replay", "expert", "medium-expert")
D4RL_SAC_STEPS = 1_000_000
D4RL_TRANSITIONS = 1_000_000
# "medium": the checkpoint closest to this fraction of the expert's normalized score.
MEDIUM_FRACTION = 1.0 / 3.0


class CheckpointScores(BaseCallback):
    """
    Every ``checkpoint_freq`` steps, evaluate the policy and keep a copy of its weights.

    :param eval_env: The env to evaluate in
    :param checkpoint_freq: Steps between checkpoints
    :param n_eval_episodes: Episodes per evaluation
    """

    def __init__(self, eval_env: gym.Env, checkpoint_freq: int, n_eval_episodes: int = 5):
        super().__init__()
        self.eval_env = eval_env
        self.checkpoint_freq = checkpoint_freq
        self.n_eval_episodes = n_eval_episodes
        self.checkpoints: list[dict[str, Any]] = []

    def _on_step(self) -> bool:
        if self.num_timesteps % self.checkpoint_freq == 0:
            mean_return, _ = evaluate_policy(self.model, self.eval_env, self.n_eval_episodes, deterministic=True)
            state = copy.deepcopy(self.model.policy.state_dict())
            self.checkpoints.append({"timestep": self.num_timesteps, "mean_return": float(mean_return), "policy": state})
        return True


def _check_env_name(env_name: str) -> None:
    if env_name not in ENV_IDS:
        raise ValueError(f"Unknown locomotion task '{env_name}': choose one of {', '.join(ENV_IDS)}.")


def train_sac(env_name: str, train_steps: int, n_checkpoints: int = 20, seed: int = 0, progress: bool = True):
    """:return: The trained SAC model and its checkpoints (weights, timestep, mean evaluation return)."""
    _check_env_name(env_name)
    env = gym.make(ENV_IDS[env_name])
    model = SAC("MlpPolicy", env, buffer_size=max(train_steps, 1), learning_starts=min(10_000, train_steps // 10), seed=seed)
    checkpoints = CheckpointScores(Monitor(gym.make(ENV_IDS[env_name])), max(train_steps // n_checkpoints, 1))
    model.learn(train_steps, callback=checkpoints, progress_bar=progress)
    return model, checkpoints.checkpoints


def pick_medium(checkpoints: list[dict[str, Any]], env_name: str) -> dict[str, Any]:
    """:return: The checkpoint whose normalized score is closest to a third of the last one's."""
    ref_min, ref_max = D4RL_REF_SCORES[env_name]
    scores = np.array([(c["mean_return"] - ref_min) / (ref_max - ref_min) for c in checkpoints])
    return checkpoints[int(np.argmin(np.abs(scores - MEDIUM_FRACTION * scores[-1])))]


def replay_episodes(model: SAC, n_transitions: int) -> list[EpisodeBuffer]:
    """:return: The first ``n_transitions`` rows of SAC's replay buffer (one env) as episodes."""
    buffer = model.replay_buffer
    n_rows = min(n_transitions, buffer.size())
    observations, next_observations = buffer.observations[:n_rows, 0], buffer.next_observations[:n_rows, 0]
    actions = model.policy.unscale_action(buffer.actions[:n_rows, 0])
    rewards, dones, timeouts = buffer.rewards[:n_rows, 0], buffer.dones[:n_rows, 0] > 0, buffer.timeouts[:n_rows, 0] > 0
    ends = np.flatnonzero(dones)
    if len(ends) == 0 or ends[-1] != n_rows - 1:
        ends = np.append(ends, n_rows - 1)
    return split_episodes(observations, next_observations, actions, rewards, dones & ~timeouts, ends)


def _sac_policy(model: SAC, weights: dict[str, Any]) -> Policy:
    policy = copy.deepcopy(model.policy)
    policy.load_state_dict(weights)
    return lambda observation: policy.predict(observation, deterministic=False)[0]


def build_locomotion(
    env_name: str,
    train_steps: int = D4RL_SAC_STEPS,
    n_transitions: int = D4RL_TRANSITIONS,
    levels: tuple[str, ...] = LEVELS,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, minari.MinariDataset]:
    """
    Train SAC on ``env_name`` and build ``sb3-iql/{env_name}/{level}-v0`` for each level.

    :param env_name: hopper, halfcheetah or walker2d
    :param train_steps: SAC environment steps (D4RL: 1M; the expert is the final policy)
    :param n_transitions: Transitions in each rollout set (D4RL: 1M; medium-expert has twice as many)
    :param levels: Which of random, medium, medium-replay, expert, medium-expert to build
    :param seed: Seed of SAC and rollouts
    :return: The datasets by level
    """
    _check_env_name(env_name)
    unknown = set(levels) - set(LEVELS)
    if unknown:
        raise ValueError(f"Unknown levels {sorted(unknown)}: choose from {', '.join(LEVELS)}.")
    env = gym.make(ENV_IDS[env_name])
    episodes: dict[str, list[EpisodeBuffer]] = {}
    recipes: dict[str, str] = {}
    if "random" in levels:
        env.action_space.seed(seed)
        episodes["random"] = rollout_transitions(
            env, lambda _: env.action_space.sample(), n_transitions, seed, f"{env_name}-random", progress
        )
        recipes["random"] = "a uniform random policy"
    if set(levels) - {"random"}:
        model, checkpoints = train_sac(env_name, train_steps, seed=seed, progress=progress)
        medium = pick_medium(checkpoints, env_name)
        policies = {"medium": medium["policy"], "expert": checkpoints[-1]["policy"]}
        recipes["medium"] = f"the SAC checkpoint at step {medium['timestep']} (closest to 1/3 of the expert's score)"
        recipes["expert"] = f"the SAC policy after {train_steps} steps"
        for level, weights in policies.items():
            if level in levels or "medium-expert" in levels:
                policy = _sac_policy(model, weights)
                episodes[level] = rollout_transitions(env, policy, n_transitions, seed, f"{env_name}-{level}", progress)
        if "medium-replay" in levels:
            episodes["medium-replay"] = replay_episodes(model, medium["timestep"])
            recipes["medium-replay"] = f"SAC's replay buffer for its first {medium['timestep']} steps"
        if "medium-expert" in levels:
            episodes["medium-expert"] = episodes["medium"] + episodes["expert"]
            recipes["medium-expert"] = "the medium and expert sets together"
    return {
        level: write_dataset(
            f"sb3-iql/{env_name}/{level}-v0",
            episodes[level],
            env,
            *D4RL_REF_SCORES[env_name],
            description=(
                f"D4RL's {env_name}-{level} recipe in Gymnasium {ENV_IDS[env_name]}: {recipes[level]} "
                f"(SAC trained {train_steps} steps with SB3 defaults, policies sampled). D4RL reference scores."
            ),
            algorithm_name="SB3 SAC" if level != "random" else "random policy",
            overwrite=overwrite,
        )
        for level in levels
    }
