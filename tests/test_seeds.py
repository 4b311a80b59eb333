"""Many seeds in one process (``IQL.learn_offline_seeds``): each seed's step is a single model's step, and the models
it returns are ordinary models."""

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from conftest import SMALL
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback

from sb3_iql import IQL
from sb3_iql.iql.seeds import release_seeds, sample_per_seed, stack_seeds

SEEDS = (0, 1, 2)
KWARGS = {"batch_size": 32, "device": "cpu", "policy_kwargs": dict(SMALL)}


def _seed_batch(batch, k):
    return type(batch)(*(None if field is None else _index(field, k) for field in batch))


def _index(field, k):
    return {key: value[k] for key, value in field.items()} if isinstance(field, dict) else field[k]


@pytest.mark.parametrize("policy, dataset", [("MlpPolicy", "pendulum_dataset"), ("MultiInputPolicy", "nested_dataset")])
@pytest.mark.parametrize("compile_update", [False, True], ids=["eager", "compiled"])
def test_a_step_of_seed_k_equals_a_step_of_its_model_alone(policy, dataset, compile_update, request):
    """After a few steps together (Adam's moments and the targets off their initial values), one more step of
    every seed equals the step its model takes alone on the same batch."""
    data = request.getfixturevalue(dataset)
    models = [IQL(policy, None, seed=seed, compile_update=compile_update, **KWARGS) for seed in SEEDS]
    for model in models:
        model.load_dataset(data)
    together = stack_seeds(models)
    for _ in range(3):
        together._gradient_step(sample_per_seed(models[0].replay_buffer, len(SEEDS), 32))
    release_seeds(together)
    alone = [copy.deepcopy(model) for model in models]
    assert not all(th.equal(a, b) for a, b in zip(models[0].policy.parameters(), models[1].policy.parameters()))

    together = stack_seeds(models)
    batch = sample_per_seed(models[0].replay_buffer, len(SEEDS), 32)
    stats = th.stack(together._gradient_step(batch))
    assert together.compile_update == compile_update, "compiling the seeds' step failed and it fell back to eager"
    release_seeds(together)
    for k, model in enumerate(alone):
        expected = th.stack(model._gradient_step(_seed_batch(batch, k)))
        np.testing.assert_allclose(stats[:, k].numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
        for name, param in model.policy.named_parameters():
            np.testing.assert_allclose(
                dict(models[k].policy.named_parameters())[name].detach().numpy(), param.detach().numpy(), atol=1e-5
            )
        for optimizer in ("actor", "critic", "value"):
            expected_state = getattr(model, optimizer).optimizer.state_dict()["state"]
            actual_state = getattr(models[k], optimizer).optimizer.state_dict()["state"]
            for index, state in expected_state.items():
                np.testing.assert_allclose(actual_state[index]["exp_avg"].numpy(), state["exp_avg"].numpy(), atol=1e-5)


class CountSteps(BaseCallback):
    def _on_step(self) -> bool:
        return True


def test_learn_offline_seeds_returns_ordinary_models(pendulum_dataset, tmp_path):
    """Each model: its own seed's weights, the data in its own buffer, its callbacks; it saves, loads and finetunes."""
    callbacks = [CountSteps() for _ in SEEDS]
    models = IQL.learn_offline_seeds(SEEDS, "MlpPolicy", "Pendulum-v1", pendulum_dataset, 40, callbacks=callbacks, **KWARGS)
    assert [model.seed for model in models] == list(SEEDS)
    assert [callback.n_calls for callback in callbacks] == [40, 40, 40]
    observations = pendulum_dataset.sample_episodes(1)[0].observations[:5]
    actions = [model.predict(observations, deterministic=True)[0] for model in models]
    assert not np.allclose(actions[0], actions[1])  # seeds differ
    for model in models:
        assert model.num_timesteps == 40 and model._n_updates == 40
        assert model.offline_datasets == [pendulum_dataset.spec.dataset_id]
        assert model.replay_buffer.size() == pendulum_dataset.total_steps
        assert all(param.untyped_storage().nbytes() == param.numel() * 4 for param in model.policy.parameters())
    models[0].learn(20)  # online finetuning of one seed leaves the others' buffers alone
    assert models[1].replay_buffer.size() == pendulum_dataset.total_steps
    models[0].save(tmp_path / "seed0")
    loaded = IQL.load(tmp_path / "seed0", device="cpu")
    np.testing.assert_array_equal(
        loaded.predict(observations, deterministic=True)[0], models[0].predict(observations, deterministic=True)[0]
    )
    loaded.set_env(gym.make("Pendulum-v1"))
    loaded.learn(10, reset_num_timesteps=False)


def test_learn_offline_seeds_evaluates_each_seed(pendulum_dataset):
    """SB3's ``EvalCallback`` per seed sees that seed's policy; ``eval_env`` (the dataset's env) evaluates every seed."""
    evaluations = [EvalCallback(gym.make("Pendulum-v1", max_episode_steps=20), eval_freq=2, n_eval_episodes=2) for _ in SEEDS]
    models = IQL.learn_offline_seeds(
        SEEDS, "MlpPolicy", None, pendulum_dataset, 4, callbacks=evaluations, eval_env="dataset", eval_freq=2, **KWARGS
    )
    for model, evaluation in zip(models, evaluations):
        assert evaluation.model is model and evaluation.n_calls == 4 and np.isfinite(evaluation.last_mean_reward)
    assert len({evaluation.last_mean_reward for evaluation in evaluations}) > 1


@pytest.mark.parametrize(
    "seeds, kwargs, message",
    [
        ([0, 0], {}, "distinct seeds"),
        ([], {}, "distinct seeds"),
        ([0, 1], {"callbacks": [None]}, "one callback"),
        ([0, 1], {"seed": 3}, "as `seeds`"),
    ],
)
def test_learn_offline_seeds_refuses_bad_arguments(pendulum_dataset, seeds, kwargs, message):
    with pytest.raises(ValueError, match=message):
        IQL.learn_offline_seeds(seeds, "MlpPolicy", None, pendulum_dataset, 10, **{**KWARGS, **kwargs})


def test_saved_seeds_go_on_together(pendulum_dataset, tmp_path):
    """Checkpoints of seeds trained together load and resume together (``reset_num_timesteps=False``)."""
    models = IQL.learn_offline_seeds([0, 1], "MlpPolicy", None, pendulum_dataset, 10, **KWARGS)
    for model in models:
        model.save(tmp_path / f"seed{model.seed}")
    loaded = [IQL.load(tmp_path / f"seed{seed}", device="cpu") for seed in (0, 1)]
    IQL.learn_offline_together(loaded, pendulum_dataset, 10, reset_num_timesteps=False)
    assert [model.num_timesteps for model in loaded] == [20, 20]
    assert [model._offline_schedule_start for model in loaded] == [0, 0]  # the actor's lr decay spans both calls
    loaded[1].num_timesteps = 15
    with pytest.raises(ValueError, match="only from one step"):
        IQL.learn_offline_together(loaded, pendulum_dataset, 10, reset_num_timesteps=False)


def test_models_of_other_configurations_do_not_train_together(pendulum_dataset):
    models = [IQL("MlpPolicy", None, seed=0, expectile=0.7, **KWARGS), IQL("MlpPolicy", None, seed=1, expectile=0.9, **KWARGS)]
    with pytest.raises(ValueError, match="only with one expectile"):
        IQL.learn_offline_together(models, pendulum_dataset, 10)
    assert all(model.replay_buffer is None or model.replay_buffer.size() == 0 for model in models)  # refused before loading


def test_the_seeds_compiled_step_is_one_graph(pendulum_dataset):
    """A graph break in the stacked step made K seeds together 3x slower than K runs on CPU."""
    th._dynamo.reset()
    counters = th._dynamo.utils.counters
    counters.clear()
    models = [IQL("MlpPolicy", None, seed=seed, compile_update=True, **KWARGS) for seed in SEEDS]
    for model in models:
        model.load_dataset(pendulum_dataset)
    together = stack_seeds(models)
    for _ in range(4):  # the first step runs eagerly and creates the optimizer state
        together._gradient_step(sample_per_seed(models[0].replay_buffer, len(SEEDS), 32))
    release_seeds(together)
    assert together.compile_update, "compiling failed and the update fell back to eager"
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert counters["stats"]["unique_graphs"] == 1
