"""The optimised gradient step against a straightforward formulation of the paper's Algorithm 1."""

import copy
import importlib
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import torch.nn.functional as F

from sb3_iql import IQL

BOX_ACTIONS = gym.spaces.Box(-1, 1, (3,), np.float32)


def make_model(
    observation_space: gym.Space,
    compile_update: bool = False,
    action_space: gym.Space = BOX_ACTIONS,
) -> IQL:
    """A model with 64 random transitions in its buffer (actions in [-1, 1], or indices of a Discrete space)."""
    model = IQL("MlpPolicy", None, expectile=0.8, beta=3.0, seed=0, device="cpu", compile_update=compile_update)
    model.observation_space, model.action_space = observation_space, action_space
    model._setup_model()
    rng = np.random.default_rng(0)
    n = 64
    dones = rng.random(n) < 0.3
    if isinstance(action_space, gym.spaces.Discrete):
        actions = rng.integers(0, action_space.n, (n, 1)).astype(np.float32)
    else:
        actions = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    model.replay_buffer.add_transitions(
        rng.normal(size=(n, 5)).astype(np.float32),
        rng.normal(size=(n, 5)).astype(np.float32),
        actions,
        rng.normal(size=n).astype(np.float32),
        dones,
        dones & (rng.random(n) < 0.5),
    )
    return model


def box_q_values(critic, obs, actions) -> list[th.Tensor]:
    """Each critic's Q(s, a)."""
    return list(critic(obs, actions))


def box_log_prob(actor, obs, actions) -> th.Tensor:
    """torch's Normal log-prob of the actions under the actor's mean and std."""
    mean, log_std = actor.mean_and_log_std(obs)
    return th.distributions.Normal(mean, log_std.exp()).log_prob(actions).sum(-1)


def reference_step(model: IQL, batch, q_values=box_q_values, log_prob=box_log_prob) -> dict[str, float]:
    """
    Algorithm 1 written plainly: three backward passes, each critic on its own.

    :param q_values: ``(critic, obs, actions) -> [Q_1(s, a), Q_2(s, a)]``, written plainly for the action space
    :param log_prob: ``(actor, obs, actions) -> log pi(a|s)``, with torch's distribution for the action space
    """
    actor, critic, target, value = (
        copy.deepcopy(net) for net in (model.actor, model.critic, model.critic_target, model.value)
    )
    # The same Adam (state included): what differs is how the losses and backward passes are written.
    optimizers = {}
    for name, net, source in [("v", value, model.value), ("pi", actor, model.actor), ("q", critic, model.critic)]:
        optimizers[name] = th.optim.Adam(net.parameters(), lr=3e-4, fused=True)
        # A deep copy: load_state_dict would share the live "step" tensors with the model's optimizer.
        optimizers[name].load_state_dict(copy.deepcopy(source.optimizer.state_dict()))
    obs, actions, next_obs = batch.observations, batch.actions, batch.next_observations
    rewards, not_done = batch.rewards.squeeze(-1), 1 - batch.dones.squeeze(-1)

    with th.no_grad():
        q_t = th.minimum(*q_values(target, obs, actions))
    v = value(obs)
    u = q_t - v
    value_loss = (th.abs(model.expectile - (u < 0).float()) * u**2).mean()
    optimizers["v"].zero_grad()
    value_loss.backward()
    optimizers["v"].step()

    with th.no_grad():
        weight = th.exp(model.beta * (q_t - value(obs))).clamp(max=100.0)
    actor_loss = -(weight * log_prob(actor, obs, actions)).mean()
    optimizers["pi"].zero_grad()
    actor_loss.backward()
    optimizers["pi"].step()

    with th.no_grad():
        td_target = rewards + model.gamma * not_done * value(next_obs)
    q1, q2 = q_values(critic, obs, actions)
    critic_loss = F.mse_loss(q1, td_target) + F.mse_loss(q2, td_target)
    optimizers["q"].zero_grad()
    critic_loss.backward()
    optimizers["q"].step()
    with th.no_grad():
        for p, tp in zip(critic.parameters(), target.parameters()):
            tp.mul_(1 - model.tau).add_(model.tau * p)
    return {
        "losses": [value_loss.item(), actor_loss.item(), critic_loss.item()],
        "networks": {"value": value, "actor": actor, "critic": critic, "critic_target": target},
    }


def assert_step_matches_reference(model: IQL, q_values=box_q_values, log_prob=box_log_prob) -> None:
    """After a few steps (so Adam's moments and the target critics are not at their initial values), one more
    gradient step of the model equals ``reference_step``'s: losses and every network's parameters."""
    for _ in range(3):
        model._gradient_step(model.replay_buffer.sample(32))
    batch = model.replay_buffer.sample(32)
    model.policy.set_training_mode(True)
    expected = reference_step(model, batch, q_values, log_prob)
    stats = model._gradient_step(batch)
    np.testing.assert_allclose(
        [stats.value_loss, stats.actor_loss, stats.critic_loss], expected["losses"], rtol=1e-5, atol=1e-6
    )
    for name, network in expected["networks"].items():
        for p_model, p_expected in zip(getattr(model, name).parameters(), network.parameters()):
            np.testing.assert_allclose(p_model.detach().numpy(), p_expected.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("compile_update", [False, True], ids=["eager", "compiled"])
def test_update_matches_straightforward_algorithm_1(compile_update):
    assert_step_matches_reference(make_model(gym.spaces.Box(-np.inf, np.inf, (5,), np.float32), compile_update))


def test_compiled_update_is_one_graph():
    """Every graph break costs more than the elementwise work between two matrix products."""
    th._dynamo.reset()
    counters = th._dynamo.utils.counters
    counters.clear()
    model = make_model(gym.spaces.Box(-np.inf, np.inf, (5,), np.float32), compile_update=True)
    for _ in range(4):  # the first step runs eagerly and creates the optimizer state
        model._gradient_step(model.replay_buffer.sample(32))
    assert model.compile_update, "compiling failed and the update fell back to eager"
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert counters["stats"]["unique_graphs"] == 1


def test_compile_falls_back_to_eager_where_it_cannot_compile():
    th._dynamo.reset()
    model = make_model(gym.spaces.Box(-np.inf, np.inf, (5,), np.float32), compile_update=True)
    eager = make_model(gym.spaces.Box(-np.inf, np.inf, (5,), np.float32))
    batches = [model.replay_buffer.sample(32) for _ in range(3)]
    with th._inductor.config.patch({"cpp.cxx": (None, "/no/such/compiler"), "fx_graph_cache": False}):
        with pytest.warns(UserWarning, match="torch.compile failed"):
            stats = [model._gradient_step(batch) for batch in batches]
    assert not model.compile_update
    # The step that failed to compile ran eagerly instead: the model trained exactly as an eager one.
    for batch, expected in zip(batches, stats):
        th.testing.assert_close(eager._gradient_step(batch), expected)
    for p_model, p_eager in zip(model.policy.parameters(), eager.policy.parameters()):
        th.testing.assert_close(p_model, p_eager)


def test_a_changed_private_torch_api_falls_back_to_eager_and_names_it(monkeypatch):
    # As on a torch whose functional Adam no longer takes an argument sb3-iql passes it.
    arguments = importlib.import_module("sb3_iql.common.compile").FUNCTIONAL_ADAM_ARGUMENTS
    monkeypatch.setattr("sb3_iql.common.compile.FUNCTIONAL_ADAM_ARGUMENTS", arguments | {"step_size_schedule"})
    model = make_model(gym.spaces.Box(-np.inf, np.inf, (5,), np.float32), compile_update=True)
    eager = make_model(gym.spaces.Box(-np.inf, np.inf, (5,), np.float32))
    batches = [model.replay_buffer.sample(32) for _ in range(3)]
    with pytest.warns(
        UserWarning, match=r"torch.compile failed \(this torch lacks torch.optim.adam.adam arguments \['step_size_schedule'\]"
    ):
        stats = [model._gradient_step(batch) for batch in batches]
    assert not model.compile_update
    for batch, expected in zip(batches, stats):
        th.testing.assert_close(eager._gradient_step(batch), expected)


def test_an_error_of_the_step_itself_is_not_swallowed_as_a_compile_failure():
    model = make_model(gym.spaces.Box(-np.inf, np.inf, (5,), np.float32), compile_update=True)
    batch = model.replay_buffer.sample(32)
    model._gradient_step(batch)
    wrong = batch._replace(actions=batch.actions[:, :2])  # a shape error inside the step, not a compile failure
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "torch.compile failed" warning: the step's own error propagates
        with pytest.raises(RuntimeError, match="size"):
            model._gradient_step(wrong)
    assert model.compile_update


def test_learning_rates_stay_floats_when_compiled():
    model = make_model(gym.spaces.Box(-np.inf, np.inf, (5,), np.float32), compile_update=True)
    for step in range(3):
        model._offline_gradient_step(model.replay_buffer.sample(32), step, 10)
    assert model.compile_update
    for optimizer in model._optimizers:
        assert all(type(group["lr"]) is float for group in optimizer.param_groups)
    assert model.actor.optimizer.param_groups[0]["lr"] == pytest.approx(3e-4 * 0.5 * (1 + np.cos(np.pi * 2 / 10)))
