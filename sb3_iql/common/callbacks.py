"""Callbacks for offline training: evaluation with normalized scores, and a progress bar over gradient steps."""

from typing import Any, Union

import gymnasium as gym
import minari
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, ProgressBarCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.type_aliases import PolicyPredictor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from sb3_iql.common.wrappers import RecordSuccess
from sb3_iql.data.scores import normalized_score


def make_eval_env(env: Union[gym.Env, VecEnv]) -> VecEnv:
    """Wrap a gymnasium env so SB3's ``evaluate_policy`` sees episode returns and ``is_success``."""
    if isinstance(env, VecEnv):
        return env
    return DummyVecEnv([lambda: Monitor(RecordSuccess(env))])


def evaluate_episodes(
    policy: PolicyPredictor,
    eval_env: VecEnv,
    n_eval_episodes: int,
    deterministic: bool = True,
    dataset: minari.MinariDataset | None = None,
    score_success: bool = False,
) -> dict[str, float]:
    """
    Run ``n_eval_episodes`` of ``policy`` and summarize them as ``IQLEvalCallback`` logs them.

    :param policy: Anything with SB3's ``predict()`` (a model, a policy, a saved policy behind that method)
    :param eval_env: The env (``make_eval_env``)
    :param n_eval_episodes: Episodes to run
    :param deterministic: Act with the mean action
    :param dataset: The Minari dataset whose reference scores normalize returns (optional)
    :param score_success: Report 100 x the success rate as ``normalized_score`` (the paper's AntMaze score)
    :return: ``mean_reward``, ``std_reward``, ``mean_ep_length``, and where known ``success_rate`` and
        ``normalized_score``
    """
    successes: list[bool] = []

    def record_success(locals_: dict[str, Any], _globals: dict[str, Any]) -> None:
        if locals_["done"] and "is_success" in locals_["info"]:
            successes.append(bool(locals_["info"]["is_success"]))

    returns, lengths = evaluate_policy(
        policy,
        eval_env,
        n_eval_episodes=n_eval_episodes,
        deterministic=deterministic,
        return_episode_rewards=True,
        callback=record_success,
    )
    result = {
        "mean_reward": float(np.mean(returns)),
        "std_reward": float(np.std(returns)),
        "mean_ep_length": float(np.mean(lengths)),
    }
    if successes:
        result["success_rate"] = float(np.mean(successes))
    if score_success:
        if not successes:
            raise ValueError("score_success needs an evaluation env that reports info['success'] (AntMaze does).")
        result["normalized_score"] = 100.0 * sum(successes) / len(successes)  # 7.0, not 100 * 0.07 = 7.000000000000001
    elif dataset is not None and (scores := normalized_score(dataset, np.asarray(returns))) is not None:
        result["normalized_score"] = float(np.mean(scores))
    return result


class IQLEvalCallback(BaseCallback):
    """
    Evaluate the deterministic policy every ``eval_freq`` calls and log ``eval/*``.

    Logs ``eval/mean_reward``, ``eval/std_reward``, ``eval/mean_ep_length``, ``eval/success_rate``
    (when the env reports success) and ``eval/normalized_score`` (D4RL convention, 0 = random,
    100 = expert, from the dataset's Minari reference scores). Every evaluation is also kept in
    ``evaluations`` for scripts that write tables.

    :param eval_env: The environment to evaluate in
    :param dataset: The Minari dataset whose reference scores normalize returns (optional)
    :param eval_freq: Evaluate every ``eval_freq`` calls (gradient steps offline, env steps online)
    :param n_eval_episodes: Episodes per evaluation
    :param deterministic: Act with the mean action
    :param verbose: Print each evaluation when > 0
    :param score_success: Report 100 x the success rate as ``normalized_score`` (the paper's AntMaze score),
        not the return normalized by the dataset's reference scores
    """

    def __init__(
        self,
        eval_env: Union[gym.Env, VecEnv],
        dataset: minari.MinariDataset | None = None,
        eval_freq: int = 5000,
        n_eval_episodes: int = 10,
        deterministic: bool = True,
        verbose: int = 0,
        score_success: bool = False,
    ):
        super().__init__(verbose)
        self.score_success = score_success
        self.eval_env = make_eval_env(eval_env)
        self.dataset = dataset
        self.eval_freq = eval_freq
        self.n_eval_episodes = n_eval_episodes
        self.deterministic = deterministic
        self.evaluations: list[dict[str, float]] = []

    def _on_step(self) -> bool:
        if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
            self.evaluate()
        return True

    def evaluate(self) -> dict[str, float]:
        """Run one evaluation now, log it and return its summary."""
        result = evaluate_episodes(
            self.model, self.eval_env, self.n_eval_episodes, self.deterministic, self.dataset, self.score_success
        )
        result["timesteps"] = float(self.num_timesteps)
        self.evaluations.append(result)
        for key, value in result.items():
            if key != "timesteps":
                self.logger.record(f"eval/{key}", value)
        self.logger.dump(self.num_timesteps)
        if self.verbose > 0:
            summary = ", ".join(f"{key}={value:.3f}" for key, value in result.items() if key != "timesteps")
            print(f"Eval num_timesteps={self.num_timesteps}: {summary}")
        return result


class OfflineProgressBarCallback(ProgressBarCallback):
    """SB3's progress bar, advanced by one per gradient step (there is no env, hence no ``num_envs``)."""

    def _on_step(self) -> bool:
        self.pbar.update(1)
        return True
