"""SB3's train/eval mode contract: gradient steps in training mode (dropout on), prediction and evaluation in eval mode."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from conftest import small_iql
from stable_baselines3.common.callbacks import EvalCallback

from sb3_iql import IQL, IQLEvalCallback

SMALL = {"net_arch": [32, 32]}


def record_training_modes(model: IQL) -> list[bool]:
    """Wrap the model's update so every gradient step records whether the actor (with its dropout) is in training mode."""
    modes: list[bool] = []
    update = model._update

    def recording_update(batch):
        modes.append(model.actor.training and model.critic.training and model.value.training)
        return update(batch)

    model._update = recording_update
    return modes


@pytest.mark.parametrize("evaluation", ["eval_env", "IQLEvalCallback", "EvalCallback"])
def test_offline_evaluations_leave_the_networks_in_training_mode(pendulum_dataset, evaluation):
    model = small_iql(None, policy_kwargs={**SMALL, "actor_dropout": 0.1})
    eval_env = gym.make("Pendulum-v1", max_episode_steps=5)
    kwargs = {}
    if evaluation == "eval_env":
        kwargs = {"eval_env": eval_env, "eval_freq": 10, "n_eval_episodes": 1}
    elif evaluation == "IQLEvalCallback":
        kwargs = {"callback": IQLEvalCallback(eval_env, pendulum_dataset, eval_freq=10, n_eval_episodes=1)}
    else:
        kwargs = {"callback": EvalCallback(eval_env, eval_freq=10, n_eval_episodes=1, verbose=0)}
    model.load_dataset(pendulum_dataset)
    modes = record_training_modes(model)
    model.learn_offline(pendulum_dataset, 30, **kwargs)
    assert len(modes) == 30 and all(modes), f"eval mode during steps {[i for i, m in enumerate(modes) if not m]}"


def test_online_updates_run_in_training_mode_between_evaluations(pendulum_dataset):
    env = gym.make("Pendulum-v1", max_episode_steps=20)
    model = small_iql(env, policy_kwargs={**SMALL, "actor_dropout": 0.1})
    model.learn_offline(pendulum_dataset, 5)
    modes = record_training_modes(model)
    model.learn(40, callback=EvalCallback(gym.make("Pendulum-v1", max_episode_steps=5), eval_freq=10, n_eval_episodes=1))
    assert len(modes) == 40 and all(modes)


def test_dropout_acts_in_training_and_not_in_prediction(pendulum_dataset):
    model = small_iql(None, policy_kwargs={**SMALL, "actor_dropout": 0.5})
    model.learn_offline(pendulum_dataset, 2)
    obs = th.as_tensor(np.zeros((64, 3), np.float32))
    model.policy.set_training_mode(True)
    assert not th.equal(model.actor.mean_and_log_std(obs)[0], model.actor.mean_and_log_std(obs)[0])
    observation = np.zeros(3, np.float32)
    assert model.predict(observation, deterministic=True)[0] == model.predict(observation, deterministic=True)[0]
    assert not model.actor.training


def test_the_networks_are_walked_only_when_the_mode_changes(pendulum_dataset):
    model = small_iql(None, policy_kwargs={**SMALL, "actor_dropout": 0.1})
    model.learn_offline(pendulum_dataset, 2)
    walks: list[bool] = []
    train = model.actor.train
    model.actor.train = lambda mode=True: (walks.append(mode), train(mode))[1]
    for _ in range(10):  # an evaluation's predictions
        model.predict(np.zeros(3, np.float32), deterministic=True)
    model.policy.set_training_mode(True)
    model.policy.set_training_mode(True)
    assert walks == [False, True] and model.actor.training and model.actor.latent_pi.training
