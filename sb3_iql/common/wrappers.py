"""Gymnasium wrappers: nested Dict observations flattened, task success visible to SB3, the binary Adroit reward."""

from typing import Any, SupportsFloat

import gymnasium as gym

from sb3_iql.data.spaces import flatten_dict_observation, flatten_dict_space, has_nested_dict


class FlattenNestedDict(gym.ObservationWrapper):
    """
    Merge nested Dict observations into one level of ``"outer/inner"`` keys, which SB3's
    ``MultiInputPolicy`` takes; sb3-iql flattens dataset observations the same way.

    :param env: An env with nested Dict observations
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = flatten_dict_space(env.observation_space)

    def observation(self, observation: Any) -> Any:
        return flatten_dict_observation(observation)


class RecordSuccess(gym.Wrapper):
    """
    Report ``info["is_success"]`` at the end of each episode from the env's ``info["success"]``.

    Gymnasium-Robotics envs (AntMaze, PointMaze, Adroit, Kitchen) report ``success`` at every
    step; SB3's ``Monitor``, ``EvalCallback`` and ``rollout/success_rate`` read ``is_success``
    when an episode ends. An episode counts as a success if the goal was reached at any step.
    Envs that report neither key pass through unchanged.

    :param env: The environment to wrap
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.succeeded = False

    def reset(self, **kwargs) -> tuple[Any, dict[str, Any]]:
        self.succeeded = False
        return self.env.reset(**kwargs)

    def compute_reward(self, achieved_goal: Any, desired_goal: Any, info: Any) -> Any:
        """A goal env's reward function, passed through (SB3's ``HerReplayBuffer`` and ``check_env`` call it on the env)."""
        return self.env.get_wrapper_attr("compute_reward")(achieved_goal, desired_goal, info)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        if "success" in info:
            self.succeeded = self.succeeded or bool(info["success"])
            if (terminated or truncated) and "is_success" not in info:
                info["is_success"] = self.succeeded
        return observation, reward, terminated, truncated, info


class BinaryReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """
    Replace the reward by 0 on steps where the task is solved (``info["success"]``) and -1 otherwise.

    This is the reward of AWAC's and IQL's Adroit "binary" tasks (pen/door/relocate-binary).
    The wrapper records its constructor arguments, so it is part of the env spec that Minari
    stores and ``dataset.recover_environment()`` rebuilds.

    :param env: An env that reports ``info["success"]`` every step (Gymnasium-Robotics Adroit)
    """

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        observation, _, terminated, truncated, info = self.env.step(action)
        if "success" not in info:
            raise KeyError(f"BinaryReward needs info['success'] from the env; {self.env.spec.id} does not report it.")
        return observation, 0.0 if info["success"] else -1.0, terminated, truncated, info


__all__ = [
    "BinaryReward",
    "FlattenNestedDict",
    "RecordSuccess",
    "flatten_dict_observation",
    "flatten_dict_space",
    "has_nested_dict",
]
