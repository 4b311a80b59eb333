"""
A goal-reaching ant: the low-level controller that AntMaze data is collected with.

D4RL and Minari drive a goal-reaching ant along waypoints through the maze; neither published the
controller's weights. This module trains one here, on the very ant of ``AntMaze_*-v4`` (an open
maze, ``AntMaze_Open-v4``, so the dynamics and contacts are those of the maze datasets), with
SB3's SAC, and runs the trained actor in numpy.

What the controller sees is made invariant to the ant's heading (yaw): its orientation without
the yaw, its planar velocity and the target direction both rotated into the heading frame, and the
distance to the target (capped). A policy that walks toward "ahead-left" then serves every
heading, which cuts the training needed on two CPU cores from Minari's 30M steps to well under 1M.

Training reward (per 0.05 s step): ``1`` for staying upright, ``+ PROGRESS_SCALE * (velocity toward
the target)``, ``- CONTROL_COST * |a|^2``; within ``REACH_RADIUS`` of the target a bonus and a new
target 1-5 m away; the episode terminates when the ant falls over (torso below 0.3 m or upside
down), ``- fall_penalty`` then. Reach rate: random targets 2-5 m away, reached within 0.5 m in
``REACH_STEPS`` steps.

How the shipped controller was made, in two stages (``train_shipped_controller``). SAC
(``train_controller``, shipped as ``SAC_CONTROLLER``): 200k steps in the open maze without action noise or
fall penalty (it walks, but falls about once per 1,000 steps), then resumed under ``TRAINING_OPTIONS``: the
datasets' action noise 0.2 in every step and a fall penalty of 100. Then PPO (``finetune_controller``) where
the controller is used: in the umaze, medium and large mazes, walking the planner's waypoints from random
cells under the data's noise, its actions scaled by 0.6 and a fall costing 1,000 (``PPO_OPTIONS``), 2M steps,
seed 1 (40 minutes of one core with its measurements). Variants tried, and what each gave, are in
``benchmarks/results/ant_controller_ppo/``. ``planner_success`` in ``antmaze`` measures what matters for the
data: the planner-driven ant, with the data's noise, from the evaluation start to the goal.

From the shell::

    python -m sb3_iql.datasets train-ant --workdir runs/ant-sac                 # the SAC stage, resumable
    python -m sb3_iql.datasets train-ant --ppo --seed 1 --workdir runs/ant-ppo  # PPO from the shipped SAC stage
"""

import csv
import glob
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_iql.datasets.maze import CellWaypoints
from sb3_iql.tasks.antmaze_d4rl import ant_maze_env_id

#: The trained controller shipped with the package (the actor's weights, numpy arrays): the one the AntMaze data is made with.
SHIPPED_CONTROLLER = Path(__file__).with_name("assets") / "goal_reaching_ant.npz"
#: Its first stage, SAC in the open maze (module docstring): where PPO finetuning starts by default.
SAC_CONTROLLER = Path(__file__).with_name("assets") / "goal_reaching_ant_sac.npz"
#: The controller of D4RL's ant (``sb3_iql.tasks.antmaze_d4rl``), which the ``antmaze-d4rl`` datasets are made with: the
#: SAC stage as it is. On D4RL's gentler ant the planner drives it, under the data's noise, through the paper's tasks in
#: 100 / 100 / 99% of 100 episodes (umaze / medium / large) and it ends none upside down
#: (``benchmarks/results/antmaze_d4rl/``): the PPO stage, made to cut the falls of Gymnasium's ant, has nothing to mend.
D4RL_CONTROLLER = SAC_CONTROLLER
#: The controller trained on D4RL's ant itself (``train-ant --ant d4rl``: 200k SAC steps without noise or fall penalty,
#: then under ``TRAINING_OPTIONS``), its Gaussian head kept: the v1 ``antmaze-d4rl`` data act with its samples, as D4RL's
#: data ant acted with rlkit's exploration policy.
D4RL_ANT_CONTROLLER = Path(__file__).with_name("assets") / "goal_reaching_d4rl_ant.npz"
TRAINING_MAZE = "AntMaze_Open-v4"
REACH_RADIUS = 0.5
REACH_STEPS = 200
DISTANCE_CAP = 5.0
PROGRESS_SCALE = 5.0
CONTROL_COST = 0.25
REACH_BONUS = 10.0
#: The Gaussian action noise of the AntMaze datasets (Minari's recipe), which the controller is trained under.
DATA_ACTION_NOISE = 0.2
#: The factor on the controller's actions when it makes the AntMaze datasets. With the data's noise, the planner-driven
#: ant on the paper's tasks then succeeds in 92 / 96 / 92% (umaze / medium / large) and ends upside down in 8 / 4 / 7% of
#: the episodes, against 94 / 95 / 82% and 6 / 5 / 18% at full gain, about 5% slower (100 episodes each,
#: ``benchmarks/results/ant_controller_ppo/``).
DATA_ACTION_GAIN = 0.85
# The training env's options of the SAC stage's second part (module docstring).
TRAINING_OPTIONS = {"action_noise": DATA_ACTION_NOISE, "fall_penalty": 100.0}
#: The options of the PPO stage that made the shipped controller from the SAC stage (module docstring).
PPO_OPTIONS = {"action_scale": 0.6, "fall_penalty": 1000.0, "total_steps": 2_000_000}
MIN_UPRIGHT_HEIGHT = 0.3
FEATURES = 30
#: SB3's bounds on SAC's log-std (``stable_baselines3.sac.policies``), which ``AntController.sample`` keeps.
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


def heading(quaternion: np.ndarray) -> np.ndarray:
    """:return: The yaw of ``(w, x, y, z)`` quaternions (last axis), in radians."""
    w, x, y, z = np.moveaxis(quaternion, -1, 0)
    return np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def rotate(vectors: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """:return: 2-d ``vectors`` (last axis) rotated by ``angle``."""
    cos, sin = np.cos(angle), np.sin(angle)
    x, y = vectors[..., 0], vectors[..., 1]
    return np.stack([cos * x - sin * y, sin * x + cos * y], axis=-1)


def controller_features(ant_state: np.ndarray, position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """
    The controller's input, the same for every heading of the ant.

    :param ant_state: AntMaze's ``observation`` (27: torso height, orientation quaternion, 8 joint
        angles, then linear velocity, angular velocity in the body frame and 8 joint velocities)
    :param position: The ant's ``(x, y)`` (AntMaze's ``achieved_goal``)
    :param target: Where to go, ``(x, y)``
    :return: 30 features: height, orientation without yaw, joints, heading-frame velocity, angular
        and joint velocities, heading-frame target direction, capped distance to the target
    """
    yaw = heading(ant_state[..., 1:5])
    half = 0.5 * yaw
    # Orientation relative to the heading frame: q_yaw^-1 * q (a pure-yaw quaternion is (cos, 0, 0, sin)).
    w, x, y, z = np.moveaxis(ant_state[..., 1:5], -1, 0)
    cos, sin = np.cos(half), np.sin(half)
    tilt = np.stack([cos * w + sin * z, cos * x + sin * y, cos * y - sin * x, cos * z - sin * w], axis=-1)
    offset = target - position
    distance = np.linalg.norm(offset, axis=-1, keepdims=True)
    direction = rotate(offset, -yaw) / np.maximum(distance, 1e-6)
    return np.concatenate(
        [
            ant_state[..., :1],
            tilt,
            ant_state[..., 5:13],
            rotate(ant_state[..., 13:15], -yaw),
            ant_state[..., 15:27],
            direction,
            np.minimum(distance, DISTANCE_CAP) / DISTANCE_CAP,
        ],
        axis=-1,
    ).astype(np.float32)


def torso_up(ant_state: np.ndarray) -> float:
    """:return: The vertical component of the torso's up axis (1 upright, 0 on its side, -1 on its back)."""
    x, y = ant_state[2:4]
    return float(1.0 - 2.0 * (x * x + y * y))


def fell_over(ant_state: np.ndarray) -> bool:
    """:return: Whether the ant lies on its back or its torso is too low to walk."""
    return bool(ant_state[0] < MIN_UPRIGHT_HEIGHT or torso_up(ant_state) < 0.0)


def sample_target(position: np.ndarray, low: np.ndarray, high: np.ndarray, distance: tuple[float, float], rng) -> np.ndarray:
    """:return: A point ``distance`` away from ``position`` inside the box ``[low, high]`` (retries, then clips)."""
    for _ in range(100):
        angle = rng.uniform(0.0, 2.0 * np.pi)
        candidate = position + rng.uniform(*distance) * np.array([np.cos(angle), np.sin(angle)])
        if np.all(candidate >= low) and np.all(candidate <= high):
            return candidate
    return np.clip(candidate, low, high)


class WalkingAnt(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """
    The AntMaze ant walking to a target, for training and measuring the controller: observations are
    ``controller_features``; the maze's own reward is ignored. Per step: ``_standing_reward``, ``+
    PROGRESS_SCALE * (velocity toward the target)``, ``- CONTROL_COST * |a|^2``; ``+ REACH_BONUS`` on
    reaching the target; ``- fall_penalty`` and the end of the episode when ``_fell``. Subclasses say
    where the target is and what a reach does.

    :param env: An ``AntMaze_*-v4`` env
    :param action_noise: Std of Gaussian noise added to every action before it acts (clipped to [-1, 1]):
        training under the datasets' noise teaches a gait that survives it
    :param fall_penalty: Reward taken away when the ant falls over (which also ends the episode): a fall
        ruins the rest of a dataset episode, so it must cost more than the walk it interrupts
    :param constructor_args: The subclass's own arguments, recorded so that its spec recreates it
    """

    reach_radius = REACH_RADIUS

    def __init__(self, env: gym.Env, action_noise: float, fall_penalty: float, **constructor_args: Any):
        gym.utils.RecordConstructorArgs.__init__(
            self, action_noise=action_noise, fall_penalty=fall_penalty, **constructor_args
        )
        gym.Wrapper.__init__(self, env)
        self.action_noise = action_noise
        self.fall_penalty = fall_penalty
        self.observation_space = spaces.Box(-np.inf, np.inf, (FEATURES,), np.float32)
        self._last: dict[str, np.ndarray] = {}

    def target(self) -> np.ndarray:
        """:return: Where the ant is to walk now."""
        raise NotImplementedError

    def _standing_reward(self, ant_state: np.ndarray) -> float:
        return 1.0

    def _fell(self, ant_state: np.ndarray) -> bool:
        return fell_over(ant_state)

    def _on_reach(self, observation: dict[str, np.ndarray]) -> bool:
        """Called when the target is reached; :return: whether that ends the episode."""
        return False

    def reset(self, **kwargs) -> tuple[np.ndarray, dict[str, Any]]:
        observation, info = self.env.reset(**kwargs)
        self._last = observation
        return self._features(), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        target = self.target().copy()
        distance_before = np.linalg.norm(target - self._last["achieved_goal"])
        if self.action_noise:
            action = np.clip(action + self.action_noise * self.np_random.standard_normal(action.shape), -1.0, 1.0)
        observation, _, _, truncated, info = self.env.step(action)
        self._last = observation
        distance = np.linalg.norm(target - observation["achieved_goal"])
        ant_state = observation["observation"]
        progress = (distance_before - distance) / self.env.unwrapped.ant_env.dt
        reward = self._standing_reward(ant_state) + PROGRESS_SCALE * progress - CONTROL_COST * float(np.square(action).sum())
        info["reached"] = bool(distance <= self.reach_radius)
        terminated = self._fell(ant_state)
        if terminated:
            reward -= self.fall_penalty
        if info["reached"]:
            reward += REACH_BONUS
            terminated = self._on_reach(observation) or terminated
        return self._features(), reward, terminated, truncated, info

    def _features(self) -> np.ndarray:
        return controller_features(self._last["observation"], self._last["achieved_goal"], self.target())


class GoalReachingAnt(WalkingAnt):
    """
    The ant walking to random targets of its own in an (open) maze: the shipped controller's training env.

    :param env: An ``AntMaze_*-v4`` env (an open one for training)
    :param target_distance: Range of the distance of new targets, metres
    :param margin: Distance kept between targets and the maze's outer walls
    :param continuing: Give a new target after each reach (training) instead of ending the episode
    :param action_noise: See ``WalkingAnt``
    :param fall_penalty: See ``WalkingAnt``
    """

    def __init__(
        self,
        env: gym.Env,
        target_distance: tuple[float, float] = (1.0, 5.0),
        margin: float = 1.5,
        continuing: bool = True,
        action_noise: float = 0.0,
        fall_penalty: float = 0.0,
    ):
        super().__init__(
            env, action_noise, fall_penalty, target_distance=target_distance, margin=margin, continuing=continuing
        )
        maze = env.unwrapped.maze
        half_extent = np.array([maze.map_width, maze.map_length]) * maze.maze_size_scaling / 2
        self.low = -half_extent + maze.maze_size_scaling + margin
        self.high = half_extent - maze.maze_size_scaling - margin
        self.target_distance = target_distance
        self.continuing = continuing
        self._target = np.zeros(2)

    def target(self) -> np.ndarray:
        return self._target

    def reset(self, **kwargs) -> tuple[np.ndarray, dict[str, Any]]:
        observation, info = self.env.reset(**kwargs)
        self._last = observation
        self._new_target(observation)
        return self._features(), info

    def _new_target(self, observation: dict[str, np.ndarray]) -> None:
        self._target = sample_target(observation["achieved_goal"], self.low, self.high, self.target_distance, self.np_random)

    def _on_reach(self, observation: dict[str, np.ndarray]) -> bool:
        if not self.continuing:
            return True
        self._new_target(observation)
        return False


class MazeWalkingAnt(WalkingAnt):
    """
    The ant walking the waypoints of the datasets' planner inside a maze, for training the controller
    where it is used: each episode starts in a random open cell with a random goal cell (the maze's
    ``continuing_task`` gives a new goal once one is reached), and the target the controller sees is
    ``CellWaypoints``' next waypoint, as in data collection.

    Standing straight earns ``upright_reward * torso_up`` a step, and the episode ends as a fall once the
    torso tilts past ``min_torso_up`` or sinks below ``MIN_UPRIGHT_HEIGHT``: stricter than ``fell_over``,
    so the controller learns to keep a margin.

    :param env: An ``AntMaze_*-v4`` env made with ``continuing_task=True, reset_target=True``
    :param action_noise: See ``WalkingAnt``
    :param fall_penalty: See ``WalkingAnt``
    :param min_torso_up: Smallest ``torso_up`` before the episode counts as a fall
    :param upright_reward: Reward a step for standing straight
    """

    def __init__(
        self,
        env: gym.Env,
        action_noise: float = DATA_ACTION_NOISE,
        fall_penalty: float = 100.0,
        min_torso_up: float = 0.5,
        upright_reward: float = 1.0,
    ):
        super().__init__(env, action_noise, fall_penalty, min_torso_up=min_torso_up, upright_reward=upright_reward)
        self.min_torso_up = min_torso_up
        self.upright_reward = upright_reward
        self.waypoints: CellWaypoints | None = None

    def reset(self, **kwargs) -> tuple[np.ndarray, dict[str, Any]]:
        self.waypoints = None
        return super().reset(**kwargs)

    def target(self) -> np.ndarray:
        if self.waypoints is None:
            self.waypoints = CellWaypoints(self.env.unwrapped.maze, self.np_random)
        return self.waypoints(self._last["achieved_goal"], self._last["desired_goal"])

    @property
    def reach_radius(self) -> float:  # type: ignore[override]
        return self.waypoints.radius if self.waypoints is not None else REACH_RADIUS

    def _standing_reward(self, ant_state: np.ndarray) -> float:
        return self.upright_reward * torso_up(ant_state)

    def _fell(self, ant_state: np.ndarray) -> bool:
        return bool(ant_state[0] < MIN_UPRIGHT_HEIGHT or torso_up(ant_state) < self.min_torso_up)


def make_maze_training_env(
    maze_env_id: str = "AntMaze_Medium-v4", max_episode_steps: int = 1000, ant: str = "gymnasium", **kwargs
) -> gym.Env:
    """:return: ``MazeWalkingAnt`` in ``maze_env_id`` with ``ant`` (random start and goal cells), episodes of ``max_episode_steps``."""
    env = gym.make(
        ant_maze_env_id(maze_env_id, ant), continuing_task=True, reset_target=True, max_episode_steps=max_episode_steps
    )
    return MazeWalkingAnt(env, **kwargs)


def make_training_env(max_episode_steps: int = 500, ant: str = "gymnasium", **kwargs) -> gym.Env:
    """:return: ``GoalReachingAnt`` in an open AntMaze with ``ant``, episodes of ``max_episode_steps``."""
    env = gym.make(
        ant_maze_env_id(TRAINING_MAZE, ant), continuing_task=True, reset_target=False, max_episode_steps=max_episode_steps
    )
    return GoalReachingAnt(env, **kwargs)


def data_controller(ant: str = "gymnasium", gain: float | None = None) -> "AntController":
    """
    :param ant: Which ant the data are made with: ``"gymnasium"`` (``SHIPPED_CONTROLLER`` at ``DATA_ACTION_GAIN``) or
        ``"d4rl"`` (``D4RL_CONTROLLER`` at full gain)
    :param gain: Another factor on its actions
    :return: The controller that makes that ant's AntMaze data
    """
    path, default_gain = {"gymnasium": (SHIPPED_CONTROLLER, DATA_ACTION_GAIN), "d4rl": (D4RL_CONTROLLER, 1.0)}[ant]
    return AntController.load(path, gain=default_gain if gain is None else gain)


class AntController:
    """
    The trained controller's deterministic actor, in numpy (a few microseconds a step, no torch).

    :param weights: ``hidden_0_weight``, ``hidden_0_bias``, ..., ``mean_weight``, ``mean_bias``
    :param gain: Factor on every action (1: the actor as trained). Below 1 the gait is gentler: under the data's
        action noise the ant falls far less, and walks somewhat slower (``DATA_ACTION_GAIN``)
    """

    def __init__(self, weights: dict[str, np.ndarray], gain: float = 1.0):
        """``weights`` may hold ``action_scale``, the factor the actor was trained with (``finetune_controller``)."""
        if not 0.0 < gain <= 1.0:
            raise ValueError(f"The action gain must be in (0, 1], got {gain}.")
        self.gain = gain
        n_hidden = sum(1 for name in weights if name.startswith("hidden_") and name.endswith("_weight"))
        if n_hidden == 0 or "mean_weight" not in weights:
            raise ValueError(f"Not a goal-reaching ant controller: weights {sorted(weights)}.")
        self.layers = [(weights[f"hidden_{i}_weight"], weights[f"hidden_{i}_bias"]) for i in range(n_hidden)]
        self.mean = (weights["mean_weight"], weights["mean_bias"])
        self.log_std = (weights["log_std_weight"], weights["log_std_bias"]) if "log_std_weight" in weights else None
        self.action_scale = float(weights.get("action_scale", 1.0))
        if self.layers[0][0].shape[1] != FEATURES:
            raise ValueError(f"The controller takes {self.layers[0][0].shape[1]} features; this version needs {FEATURES}.")

    @classmethod
    def load(cls, path: str | os.PathLike = SHIPPED_CONTROLLER, gain: float = 1.0) -> "AntController":
        """
        :param path: A controller file (default: the one shipped with sb3-iql)
        :param gain: See the class
        """
        if not Path(path).is_file():
            raise FileNotFoundError(
                f"No goal-reaching ant controller at {path}: train one with `python -m sb3_iql.datasets train-ant`."
            )
        with np.load(path) as data:
            return cls({name: data[name] for name in data.files}, gain)

    @property
    def stochastic(self) -> bool:
        """Whether the file kept the actor's Gaussian head (SAC's ``log_std`` layer), so that ``sample`` can act."""
        return self.log_std is not None

    def _latent(self, features: np.ndarray) -> np.ndarray:
        hidden = features
        for weight, bias in self.layers:
            hidden = np.maximum(hidden @ weight.T + bias, 0.0)
        return hidden

    def _squash(self, pre_tanh: np.ndarray) -> np.ndarray:
        return (self.gain * self.action_scale * np.tanh(pre_tanh)).astype(np.float32)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """:return: The deterministic action, the ``tanh`` of the Gaussian's mean."""
        hidden = self._latent(features)
        return self._squash(hidden @ self.mean[0].T + self.mean[1])

    def sample(self, features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """
        :return: An action drawn as SAC's actor acts in training: the ``tanh`` of a sample of its Gaussian (log-std
            clipped to SB3's [-20, 2]), as D4RL's data ant acted (rlkit's exploration policy)
        """
        if not self.stochastic:
            raise ValueError(
                "This controller file holds the deterministic actor only (no log_std head): export it again from its SAC "
                "checkpoint with `export_controller`, or act with the mean."
            )
        hidden = self._latent(features)
        mean = hidden @ self.mean[0].T + self.mean[1]
        std = np.exp(np.clip(hidden @ self.log_std[0].T + self.log_std[1], LOG_STD_MIN, LOG_STD_MAX))
        return self._squash(mean + std * rng.standard_normal(mean.shape))

    def act(
        self, ant_state: np.ndarray, position: np.ndarray, target: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """:return: The action that walks the ant from ``position`` toward ``target``: the mean, or a sample given ``rng``."""
        features = controller_features(ant_state, position, target)
        return self(features) if rng is None else self.sample(features, rng)


def _actor_layers(model) -> tuple[list, Any, float]:
    """
    :param model: A SAC model or a ``TanhMeanPolicy`` PPO model (``finetune_controller``)
    :return: Its actor's hidden linear layers, mean layer and action scale
    """
    if hasattr(model, "actor"):
        return [module for module in model.actor.latent_pi if hasattr(module, "weight")], model.actor.mu, 1.0
    policy = model.policy
    hidden = [module for module in policy.mlp_extractor.policy_net if hasattr(module, "weight")]
    return hidden, policy.action_net[0], policy.action_scale


def export_controller(model, path: str | os.PathLike) -> None:
    """
    Write a SAC or ``finetune_controller`` PPO model's actor as a controller file: its scaled ``tanh`` mean and, for SAC,
    its Gaussian head (the ``log_std`` layer), which ``AntController.sample`` acts with.
    """
    hidden, mean, action_scale = _actor_layers(model)
    arrays = {}
    for index, layer in enumerate(hidden):
        arrays[f"hidden_{index}_weight"] = layer.weight.detach().cpu().numpy()
        arrays[f"hidden_{index}_bias"] = layer.bias.detach().cpu().numpy()
    arrays["mean_weight"] = mean.weight.detach().cpu().numpy()
    arrays["mean_bias"] = mean.bias.detach().cpu().numpy()
    log_std = getattr(getattr(model, "actor", None), "log_std", None)
    if hasattr(log_std, "weight"):
        arrays["log_std_weight"] = log_std.weight.detach().cpu().numpy()
        arrays["log_std_bias"] = log_std.bias.detach().cpu().numpy()
    arrays["action_scale"] = np.float32(action_scale)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{path}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _copy_controller_into(model, controller: "AntController") -> None:
    """Copy a controller's weights into a fresh model's actor (the inverse of ``export_controller``)."""
    import torch as th

    hidden, mean, _ = _actor_layers(model)
    if len(hidden) != len(controller.layers):
        raise ValueError(f"The controller has {len(controller.layers)} hidden layers; the actor has {len(hidden)}.")
    with th.no_grad():
        for layer, (weight, bias) in zip(hidden, controller.layers):
            layer.weight.copy_(th.as_tensor(weight))
            layer.bias.copy_(th.as_tensor(bias))
        mean.weight.copy_(th.as_tensor(controller.mean[0]))
        mean.bias.copy_(th.as_tensor(controller.mean[1]))


def reach_rate(
    controller: AntController,
    n_trials: int = 100,
    distance: tuple[float, float] = (2.0, 5.0),
    max_steps: int = REACH_STEPS,
    seed: int = 0,
    action_noise: float = 0.0,
    ant: str = "gymnasium",
) -> dict[str, float]:
    """
    Measure how often the controller reaches random targets.

    :param action_noise: Std of the Gaussian noise added to its actions (the datasets use 0.2)
    :param ant: The ant it drives (``train_controller``)
    :return: ``reach_rate`` (share of trials within ``REACH_RADIUS`` of the target in ``max_steps``),
        ``mean_steps`` of the reached trials, ``fell_over`` share
    """
    env = make_training_env(
        max_episode_steps=max_steps, ant=ant, target_distance=distance, continuing=False, action_noise=action_noise
    )
    reached, steps, fallen = [], [], 0
    for trial in range(n_trials):
        features, _ = env.reset(seed=seed + trial)
        for step in range(1, max_steps + 1):
            features, _, terminated, truncated, info = env.step(controller(features))
            if info["reached"]:
                steps.append(step)
            if terminated or truncated:
                break
        reached.append(info["reached"])
        fallen += int(terminated and not info["reached"])
    env.close()
    return {
        "reach_rate": float(np.mean(reached)),
        "mean_steps": float(np.mean(steps)) if steps else float("nan"),
        "fell_over": fallen / n_trials,
    }


def _warm_started_sac_class():
    """
    :return: SAC whose warm-started actor stays frozen until ``actor_frozen_until`` steps while the fresh critic
        learns it, then moves at ``actor_lr_factor`` times the critic's lr: a critic fitted to one gait has
        reliable action gradients only near it (at the full lr the gait fell apart within 5k steps)
    """
    from stable_baselines3 import SAC

    class WarmStartedSAC(SAC):
        actor_frozen_until = 0
        actor_lr_factor = 0.1

        def _update_learning_rate(self, optimizers) -> None:
            super()._update_learning_rate(optimizers)
            factor = 0.0 if self.num_timesteps < self.actor_frozen_until else self.actor_lr_factor
            for group in self.actor.optimizer.param_groups:
                group["lr"] *= factor

    return WarmStartedSAC


def load_actor_weights(model, path: str | os.PathLike, log_std: float = -2.0) -> None:
    """Copy a controller file's weights into a fresh SAC model's actor, with a small fixed ``log_std``."""
    import torch as th

    controller = AntController.load(path)
    if controller.action_scale != 1.0:
        raise ValueError(f"{path} was trained with an action scale; SAC's actor has none: finetune it with --ppo instead.")
    _copy_controller_into(model, controller)
    with th.no_grad():
        model.actor.log_std.weight.zero_()
        model.actor.log_std.bias.fill_(log_std)


def train_controller(
    workdir: str | os.PathLike,
    total_steps: int = 600_000,
    checkpoint_every: int = 50_000,
    eval_trials: int = 20,
    seed: int = 0,
    output: str | os.PathLike = SAC_CONTROLLER,
    env_options: dict[str, float] | None = None,
    maze_env_id: str | None = None,
    warm_start: str | os.PathLike | None = None,
    actor_frozen_steps: int = 30_000,
    evaluate: Callable[[AntController], dict[str, float]] | None = None,
    ant: str = "gymnasium",
) -> dict[str, float]:
    """
    Train the controller with SAC, resuming from the latest checkpoint in ``workdir``.

    Every ``checkpoint_every`` steps the model and its replay buffer are saved, the actor is exported
    to ``workdir/controller.npz`` and measured (``learning_curve.csv``): by ``evaluate`` where given
    (e.g. the planner-driven ant in a maze), else by the reach rate of ``eval_trials`` random targets.
    At the end the actor is exported to ``output``.

    :param env_options: Options of the training env (default: ``TRAINING_OPTIONS``); they may change
        between resumed runs, which is how the first shipped controller was made (module docstring)
    :param maze_env_id: Train inside this AntMaze (``MazeWalkingAnt``: the planner's waypoints from random
        cells) instead of toward random targets in the open maze
    :param warm_start: A controller file whose weights start the actor (a new run only); the actor then
        stays frozen for ``actor_frozen_steps`` while the new critic learns it
    :param evaluate: Measures an exported controller (a dict of numbers for the learning curve)
    :param ant: The ant trained: ``"gymnasium"`` (``AntMaze_*-v4``'s) or ``"d4rl"`` (``sb3_iql.tasks.antmaze_d4rl``)
    :return: The final measurement
    """
    from stable_baselines3 import SAC

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    env_options = {**TRAINING_OPTIONS, **(env_options or {})}
    if maze_env_id is not None:
        env = make_maze_training_env(maze_env_id, ant=ant, **env_options)
    else:
        env = make_training_env(ant=ant, **env_options)
    env = _resumable_monitor(env, workdir / "monitor")
    action_noise = env_options["action_noise"]
    if evaluate is None:

        def evaluate(controller: AntController) -> dict[str, float]:
            return reach_rate(controller, n_trials=eval_trials, seed=10_000, action_noise=action_noise, ant=ant)

    algorithm = _warm_started_sac_class() if warm_start is not None else SAC
    checkpoints = sorted(glob.glob(str(workdir / "sac_*_steps.zip")), key=lambda name: int(name.split("_")[-2]))
    curve_path = workdir / "learning_curve.csv"
    if checkpoints:
        model = algorithm.load(checkpoints[-1], env=env)
        model.load_replay_buffer(checkpoints[-1].replace(".zip", "_buffer.pkl"))
        print(f"resumed from {checkpoints[-1]} ({model.num_timesteps} steps)")
    else:
        # A warm start keeps the entropy bonus small and fixed. The trained gait's actions sit near +-1, where tanh's
        # log-det makes the squashed Gaussian's entropy far below SAC's target (-8): the tuned coefficient then grows
        # and pulls every mean toward 0. Measured: from an initial 1 (or 0.01) the gait was gone within 20k steps.
        ent_coef = 0.001 if warm_start is not None else "auto"
        model = algorithm("MlpPolicy", env, learning_starts=10_000, ent_coef=ent_coef, seed=seed, verbose=0, device="cpu")
        if warm_start is not None:
            load_actor_weights(model, warm_start)
            model.learning_starts = 256
            model.actor_frozen_until = actor_frozen_steps
            start_row = {"steps": 0, "minutes": 0.0, **evaluate(AntController.load(warm_start)), "mean_return": float("nan")}
            _append_row(curve_path, start_row)
    started = time.time()
    while model.num_timesteps < total_steps:
        chunk = min(checkpoint_every - model.num_timesteps % checkpoint_every, total_steps - model.num_timesteps)
        model.learn(chunk, reset_num_timesteps=False)
        steps = model.num_timesteps
        model.save(workdir / f"sac_{steps}_steps.zip")
        model.save_replay_buffer(workdir / f"sac_{steps}_steps_buffer.pkl")
        for old in sorted(glob.glob(str(workdir / "sac_*_steps*")), key=os.path.getmtime)[:-2]:
            os.remove(old)
        export_controller(model, workdir / f"controller_{steps}.npz")
        result = evaluate(AntController.load(workdir / f"controller_{steps}.npz"))
        returns = [float(r) for r in env.get_episode_rewards()[-20:]]
        minutes = round((time.time() - started) / 60, 1)
        _append_row(curve_path, {"steps": steps, "minutes": minutes, **result, "mean_return": np.mean(returns)})
    export_controller(model, output)
    return evaluate(AntController.load(output))


#: The mazes the controller is finetuned in, with the planner's waypoints (``finetune_controller``): all three sizes.
FINETUNE_MAZES = ("AntMaze_UMaze-v4", "AntMaze_Medium-v4", "AntMaze_Large-v4")


def _tanh_mean_policy_class():
    """
    :return: SB3's actor-critic policy whose Gaussian is centred on ``action_scale * tanh`` of the mean layer, with a fixed std:
        the controller's deterministic action plus the data's noise, which is exactly how the datasets act
        (SB3 then clips to [-1, 1], as data collection does)
    """
    import torch as th
    from stable_baselines3.common.policies import ActorCriticPolicy

    class Scale(th.nn.Module):
        def __init__(self, factor: float):
            super().__init__()
            self.factor = factor

        def forward(self, x: th.Tensor) -> th.Tensor:
            return self.factor * x

    class TanhMeanPolicy(ActorCriticPolicy):
        def __init__(self, *args, action_scale: float = 1.0, **kwargs):
            self.action_scale = action_scale
            super().__init__(*args, **kwargs)

        def _get_constructor_parameters(self) -> dict[str, Any]:
            return {**super()._get_constructor_parameters(), "action_scale": self.action_scale}

        def _build(self, lr_schedule) -> None:
            super()._build(lr_schedule)
            self.action_net = th.nn.Sequential(self.action_net, th.nn.Tanh(), Scale(self.action_scale))
            self.log_std.requires_grad_(False)
            self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    return TanhMeanPolicy


def _finetuning_ppo_class():
    """:return: PPO whose actor stays frozen until ``actor_frozen_until`` steps while the fresh critic learns it."""
    from stable_baselines3 import PPO

    class FinetuningPPO(PPO):
        actor_frozen_until = 0

        def train(self) -> None:
            frozen = self.num_timesteps < self.actor_frozen_until
            for module in (self.policy.mlp_extractor.policy_net, self.policy.action_net):
                module.requires_grad_(not frozen)
            super().train()

    return FinetuningPPO


def finetune_controller(
    workdir: str | os.PathLike,
    total_steps: int = PPO_OPTIONS["total_steps"],
    checkpoint_every: int = 200_000,
    warm_start: str | os.PathLike = SAC_CONTROLLER,
    output: str | os.PathLike = SHIPPED_CONTROLLER,
    mazes: tuple[str, ...] = FINETUNE_MAZES,
    envs_per_maze: int = 3,
    n_steps: int = 1024,
    fall_penalty: float = 100.0,
    min_torso_up: float = 0.5,
    actor_frozen_steps: int = 100_000,
    learning_rate: float = 1e-4,
    clip_range: float = 0.1,
    action_scale: float | None = None,
    action_noise: float = DATA_ACTION_NOISE,
    seed: int = 0,
    evaluate: Callable[[AntController], dict[str, float]] | None = None,
    ant: str = "gymnasium",
) -> dict[str, float]:
    """
    Finetune a controller with PPO where it is used: in the mazes, walking the planner's waypoints from random
    cells (``MazeWalkingAnt``), acting with the datasets' own noise. The policy is ``action_scale * tanh`` of the controller's
    network plus Gaussian noise of the data's fixed std (``DATA_ACTION_NOISE``), so every rollout is a piece of
    data collection, and PPO's small, clipped steps keep the warm-started gait while they make it fall less and
    walk faster. The critic is fresh: the actor stays frozen for ``actor_frozen_steps`` while it learns.
    Resumes from the latest checkpoint in ``workdir``; exports the actor at every checkpoint
    (``controller_<steps>.npz``, kept) and measures it (``learning_curve.csv``) with ``evaluate``.

    :param total_steps: Environment steps in all (all envs together)
    :param checkpoint_every: Steps between checkpoints, exports and measurements
    :param warm_start: The controller file the actor starts from (a new run only)
    :param output: Where the final controller is written
    :param mazes: The AntMaze envs trained in
    :param envs_per_maze: Envs per maze
    :param n_steps: Steps per env between PPO updates
    :param fall_penalty: See ``MazeWalkingAnt``
    :param min_torso_up: See ``MazeWalkingAnt``
    :param actor_frozen_steps: Steps the actor waits while the critic learns
    :param learning_rate: PPO's learning rate
    :param clip_range: PPO's clip range (how far one update may move the policy)
    :param action_scale: Factor on the actor's ``tanh`` (default: the warm start's): starting from a gentler gait
        (``AntController``'s gain) that falls less under the data's noise; written into the controller file
    :param action_noise: The policy's fixed std (default: the data's noise; larger: a margin of robustness)
    :param seed: Seed of the envs and PPO
    :param evaluate: Measures an exported controller (default: nothing but the training return)
    :param ant: The ant trained (``train_controller``)
    :return: The final measurement
    """
    import torch as th
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    env_kwargs = {"ant": ant, "action_noise": 0.0, "fall_penalty": fall_penalty, "min_torso_up": min_torso_up}
    factories = [
        (lambda maze_env_id=maze_env_id: make_maze_training_env(maze_env_id, **env_kwargs))
        for maze_env_id in mazes
        for _ in range(envs_per_maze)
    ]
    (workdir / "monitor").mkdir(exist_ok=True)
    venv = DummyVecEnv(
        [
            lambda factory=factory, index=index: _resumable_monitor(factory(), workdir / "monitor" / str(index))
            for index, factory in enumerate(factories)
        ]
    )
    venv.seed(seed)
    evaluate = evaluate or (lambda controller: {})
    algorithm = _finetuning_ppo_class()
    checkpoints = sorted(glob.glob(str(workdir / "ppo_*_steps.zip")), key=lambda name: int(name.split("_")[-2]))
    curve_path = workdir / "learning_curve.csv"
    if checkpoints:
        venv = VecNormalize.load(checkpoints[-1].replace(".zip", "_vecnormalize.pkl"), venv)
        model = algorithm.load(checkpoints[-1], env=venv, device="cpu")
        print(f"resumed from {checkpoints[-1]} ({model.num_timesteps} steps)")
    else:
        start = AntController.load(warm_start)
        venv = VecNormalize(venv, norm_obs=False, norm_reward=True, gamma=0.99)
        model = algorithm(
            _tanh_mean_policy_class(),
            venv,
            learning_rate=learning_rate,
            n_steps=n_steps,
            batch_size=min(512, n_steps * len(factories)),
            n_epochs=5,
            clip_range=clip_range,
            target_kl=0.02,
            ent_coef=0.0,
            policy_kwargs={
                "net_arch": {"pi": [256, 256], "vf": [256, 256]},
                "activation_fn": th.nn.ReLU,
                "log_std_init": float(np.log(action_noise)),
                "action_scale": start.action_scale if action_scale is None else action_scale,
            },
            seed=seed,
            verbose=0,
            device="cpu",
        )
        _copy_controller_into(model, start)
        model.actor_frozen_until = actor_frozen_steps
        _append_row(curve_path, {"steps": 0, "minutes": 0.0, **evaluate(start), "mean_return": float("nan")})
    started = time.time()
    while model.num_timesteps < total_steps:
        model.learn(checkpoint_every, reset_num_timesteps=False)
        steps = model.num_timesteps
        model.save(workdir / f"ppo_{steps}_steps.zip")
        venv.save(str(workdir / f"ppo_{steps}_steps_vecnormalize.pkl"))
        for old in sorted(glob.glob(str(workdir / "ppo_*_steps*")), key=os.path.getmtime)[:-4]:
            os.remove(old)
        export_controller(model, workdir / f"controller_{steps}.npz")
        result = evaluate(AntController.load(workdir / f"controller_{steps}.npz"))
        returns = [float(info["r"]) for info in model.ep_info_buffer]
        minutes = round((time.time() - started) / 60, 1)
        _append_row(
            curve_path,
            {"steps": steps, "minutes": minutes, **result, "mean_return": np.mean(returns) if returns else float("nan")},
        )
    export_controller(model, output)
    return evaluate(AntController.load(output))


def train_shipped_controller(
    workdir: str | os.PathLike, output: str | os.PathLike = SHIPPED_CONTROLLER, seed: int = 1
) -> None:
    """
    Both stages of the shipped controller, resumable: SAC (``train_controller``) into ``workdir/sac_stage.npz``, then
    PPO finetuning under ``PPO_OPTIONS`` (``finetune_controller``) into ``output``. Hours of one CPU core.

    :param seed: Seed of both stages (the shipped PPO stage: 1)
    """
    workdir = Path(workdir)
    sac_stage = workdir / "sac_stage.npz"
    if not sac_stage.is_file():
        train_controller(workdir / "sac", output=sac_stage, seed=seed)
    finetune_controller(workdir / "ppo", output=output, warm_start=sac_stage, seed=seed, **PPO_OPTIONS)


def _resumable_monitor(env: gym.Env, path: Path) -> gym.Env:
    """:return: ``env`` in SB3's ``Monitor``, appending to ``path``'s file when a resumed run left one."""
    from stable_baselines3.common.monitor import Monitor

    return Monitor(env, str(path), override_existing=not Path(f"{path}.monitor.csv").exists())


def _append_row(path: Path, row: dict[str, Any]) -> None:
    """Append ``row`` to a CSV (a header first in a new file) and print it."""
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
    print(
        ", ".join(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}" for key, value in row.items()),
        flush=True,
    )
