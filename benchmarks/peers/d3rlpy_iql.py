"""
d3rlpy's IQL trained on arrays exported by ``benchmarks/peer.py``, in d3rlpy's own virtual environment.

d3rlpy 2.8 pins gymnasium==1.0.0, which conflicts with gymnasium-robotics, so this script never imports the
project: ``peer.py`` writes the data (``observations``, ``actions``, ``rewards``, ``terminals``, ``timeouts``, as
D4RL's files hold them, the rewards already
scaled and shifted as the project's IQL uses them) and the settings (``IQL.paper_hyperparameters``) to disk, calls this script for each stretch
between two evaluations, and evaluates the TorchScript policy it saves (``save_policy``: the greedy policy, usable
without d3rlpy) in the project's evaluation env.

One call trains from the run folder's last checkpoint (``model.d3``: networks, optimizers and learning-rate
schedules; ``state.json``: the steps done) to ``--until`` steps with d3rlpy's ``fit()`` loop body (sample a batch,
update), then saves ``model.d3``, ``state.json`` and ``policy_<steps>.pt``. Each stretch seeds its batch sampling
from the seed and its first step, so a run repeats whether or not it was cut between two stretches.
"""

import argparse
import json
import os
import time
from pathlib import Path

import d3rlpy
import numpy as np
import torch as th


def make_algo(settings: dict, total_steps: int) -> d3rlpy.algos.IQL:
    """:return: d3rlpy's IQL with the project's settings (``peer.py`` writes them from ``IQL.paper_hyperparameters``)."""
    actor_optim = d3rlpy.optimizers.AdamFactory()
    if settings["actor_lr_schedule"] == "cosine":
        # The official learner's cosine decay of the actor's learning rate over the whole run.
        actor_optim = d3rlpy.optimizers.AdamFactory(
            lr_scheduler_factory=d3rlpy.optimizers.CosineAnnealingLRFactory(T_max=total_steps)
        )
    config = d3rlpy.algos.IQLConfig(
        actor_learning_rate=settings["learning_rate"],
        critic_learning_rate=settings["learning_rate"],
        batch_size=settings["batch_size"],
        gamma=settings["gamma"],
        tau=settings["tau"],
        expectile=settings["expectile"],
        weight_temp=settings["beta"],
        max_weight=settings["max_weight"],
        actor_optim_factory=actor_optim,
        actor_encoder_factory=d3rlpy.models.VectorEncoderFactory([256, 256], dropout_rate=settings["actor_dropout"]),
        critic_encoder_factory=d3rlpy.models.VectorEncoderFactory([256, 256]),
        value_encoder_factory=d3rlpy.models.VectorEncoderFactory([256, 256]),
    )
    return config.create(device="cpu:0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the .npz that peer.py exported")
    parser.add_argument("--settings", required=True, help="the .json of IQL settings that peer.py wrote")
    parser.add_argument("--run", required=True, help="the run folder (checkpoint and policies)")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True, help="the run's total gradient steps (the lr schedule)")
    parser.add_argument("--until", type=int, required=True, help="train up to this step, then save")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    args = parser.parse_args()
    th.set_num_threads(args.threads)
    run = Path(args.run)
    run.mkdir(parents=True, exist_ok=True)
    settings = json.loads(Path(args.settings).read_text())
    arrays = np.load(args.data)
    dataset = d3rlpy.dataset.MDPDataset(
        observations=arrays["observations"],
        actions=arrays["actions"],
        rewards=arrays["rewards"],
        terminals=arrays["terminals"],
        timeouts=arrays["timeouts"],
    )
    d3rlpy.seed(args.seed)
    algo = make_algo(settings, args.steps)
    algo.build_with_dataset(dataset)
    state_file = run / "state.json"
    done = json.loads(state_file.read_text())["steps"] if state_file.exists() else 0
    if done:
        algo.load_model(str(run / "model.d3"))
    d3rlpy.seed(args.seed * 1_000_003 + done)  # this stretch's batches, the same whether the run was cut here or not
    start = time.perf_counter()
    for _ in range(done, args.until):
        algo.update(dataset.sample_transition_batch(settings["batch_size"]))
    algo.save_model(str(run / "model.tmp.d3"))
    os.replace(run / "model.tmp.d3", run / "model.d3")
    algo.save_policy(str(run / f"policy_{args.until}.pt"))
    state_file.write_text(json.dumps({"steps": args.until, "d3rlpy": d3rlpy.__version__}))
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {"steps": args.until, "steps_per_second": (args.until - done) / max(seconds, 1e-9), "d3rlpy": d3rlpy.__version__}
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
