"""``python -m sb3_iql.datasets``: list the recipes, build datasets, check door-human's dynamics."""

import argparse
import inspect
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sb3_iql.data.scores import data_score
from sb3_iql.datasets import RECIPES, ant_controller, build
from sb3_iql.datasets.adroit import door_replay_error
from sb3_iql.datasets.antmaze import planner_success
from sb3_iql.datasets.antmaze_d4rl import DRIVINGS
from sb3_iql.tasks.antmaze_d4rl import ANTS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sb3_iql.datasets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the recipes and the dataset ids they write")
    builder = commands.add_parser("build", help="build one or more recipes")
    builder.add_argument("names", nargs="+", choices=sorted(RECIPES), metavar="NAME", help="recipes (see 'list')")
    builder.add_argument(
        "--size", type=int, help="episodes or transitions, whichever the recipe counts (default: the paper's)"
    )
    builder.add_argument("--seed", type=int, help="random seed")
    builder.add_argument("--source", help="source file (default: from ../shared/data or $SB3_IQL_SHARED_DATA)")
    builder.add_argument("--train-steps", type=int, help="locomotion: SAC training steps")
    builder.add_argument("--bc-steps", type=int, help="binary tasks: behaviour cloning gradient steps")
    builder.add_argument("--overwrite", action="store_true", help="replace existing datasets")
    builder.add_argument("--controller", help="antmaze: a goal-reaching ant controller file (default: the shipped one)")
    builder.add_argument(
        "--ant",
        choices=ANTS,
        help="antmaze recipes: the ant (default: the recipe's own, Gymnasium's for antmaze-*, D4RL's for antmaze-d4rl-*); "
        "the other gives the AntMaze 2 x 2's off-diagonal cells",
    )
    builder.add_argument(
        "--driving",
        choices=DRIVINGS,
        help="antmaze-d4rl recipes: another driving than the version's own (v0 ours, v1 D4RL's), written under its own id",
    )
    builder.add_argument(
        "--retrain",
        action="store_true",
        help="antmaze: train the goal-reaching ant anew, both stages (hours; see train-ant) first",
    )
    trainer = commands.add_parser("train-ant", help="train the goal-reaching ant controller (resumable)")
    trainer.add_argument(
        "--steps",
        type=int,
        help=f"environment steps in all (default: {_default(ant_controller.train_controller, 'total_steps')}; "
        f"--ppo: {_default(ant_controller.finetune_controller, 'total_steps')})",
    )
    trainer.add_argument("--workdir", default="runs/goal-reaching-ant", help="checkpoints and learning curve")
    trainer.add_argument(
        "--checkpoint-every",
        type=int,
        help=f"steps between checkpoints (default: {_default(ant_controller.train_controller, 'checkpoint_every')}; "
        f"--ppo: {_default(ant_controller.finetune_controller, 'checkpoint_every')})",
    )
    defaults = ant_controller.TRAINING_OPTIONS
    trainer.add_argument("--noise", type=float, default=defaults["action_noise"], help="action noise in training")
    trainer.add_argument(
        "--fall-penalty",
        type=float,
        help=f"reward lost on a fall (default: {defaults['fall_penalty']}; --ppo: {ant_controller.PPO_OPTIONS['fall_penalty']})",
    )
    trainer.add_argument(
        "--output",
        help="where to write the final controller (default: the shipped one; without --ppo: its SAC stage; --ant d4rl: "
        "the controller of D4RL's ant, D4RL_ANT_CONTROLLER)",
    )
    trainer.add_argument("--maze", help="train inside this AntMaze env (e.g. AntMaze_Medium-v4) on the planner's waypoints")
    trainer.add_argument("--warm-start", help="a controller file that starts the actor (e.g. the SAC stage)")
    trainer.add_argument("--min-torso-up", type=float, default=0.5, help="--maze: tilt at which an episode counts as a fall")
    trainer.add_argument(
        "--eval-mazes", nargs="*", default=[], help="measure the planner-driven ant on these mazes' paper task at checkpoints"
    )
    trainer.add_argument("--eval-episodes", type=int, default=10, help="episodes per maze of that measurement")
    trainer.add_argument(
        "--ppo",
        action="store_true",
        help="finetune --warm-start (default: the shipped SAC stage) with PPO in all three mazes under the data's noise",
    )
    trainer.add_argument("--learning-rate", type=float, default=1e-4, help="--ppo: learning rate")
    trainer.add_argument("--clip-range", type=float, default=0.1, help="--ppo: clip range")
    trainer.add_argument(
        "--action-scale",
        type=float,
        help=f"--ppo: factor on the actor's actions (default: {ant_controller.PPO_OPTIONS['action_scale']}, a gentler gait)",
    )
    trainer.add_argument("--seed", type=int, default=0, help="seed of the training envs and the learner")
    trainer.add_argument(
        "--ant", choices=ANTS, default="gymnasium", help="the ant to train: Gymnasium's (AntMaze_*-v4) or D4RL's"
    )
    replay = commands.add_parser("door-replay", help="replay door demos in AdroitHandDoor-v1 and report the error")
    replay.add_argument("--source", help="door-v0_demos.pickle (default: from the shared data)")
    replay.add_argument("--demos", type=int, default=25, help="how many demos")
    return parser


def _summary(dataset) -> str:
    score = data_score(dataset)
    score_text = f"{score:.1f}" if score is not None else "n/a"
    return (
        f"{dataset.spec.dataset_id}: {dataset.total_episodes} episodes, {dataset.total_steps} transitions, "
        f"data normalized score {score_text}"
    )


def _planner_evaluation(mazes: list[str], n_episodes: int, ant: str = "gymnasium"):
    """
    :return: A measure of a controller: the planner-driven ant on each maze's paper task, with the data's noise
        (whatever noise it was trained under)
    """

    def evaluate(controller: ant_controller.AntController) -> dict[str, float]:
        row = {}
        for name in mazes:
            result = planner_success(name, controller, n_episodes=n_episodes, seed=5_000, ant=ant)
            row.update({f"{name}_{key}": value for key, value in result.items() if key != "mean_steps"})
        return row

    return evaluate


def _default(function: Callable[..., Any], parameter: str) -> Any:
    """:return: ``function``'s default for ``parameter`` (the one place the CLI's help reads it from)."""
    return inspect.signature(function).parameters[parameter].default


def _default_controller_file(ppo: bool, ant: str) -> Path:
    """:return: Where ``train-ant`` writes its controller by default: the shipped file that training stage makes."""
    if ppo:
        return ant_controller.SHIPPED_CONTROLLER
    return ant_controller.D4RL_ANT_CONTROLLER if ant == "d4rl" else ant_controller.SAC_CONTROLLER


def _given(value: float | None, default: float) -> float:
    """:return: ``value``, or ``default`` where the option was not given."""
    return default if value is None else value


def _passed(**options: Any) -> dict[str, Any]:
    """:return: The options that were given, for a function whose own defaults stand for the others."""
    return {name: value for name, value in options.items() if value is not None}


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "list":
        for name, recipe in RECIPES.items():
            print(f"{name:28s} {recipe.summary}\n{'':28s} -> {', '.join(recipe.dataset_ids)}")
    elif args.command == "train-ant":
        output = args.output or _default_controller_file(args.ppo, args.ant)
        evaluate = _planner_evaluation(args.eval_mazes, args.eval_episodes, args.ant) if args.eval_mazes else None
        if args.ppo:
            result = ant_controller.finetune_controller(
                args.workdir,
                warm_start=args.warm_start or ant_controller.SAC_CONTROLLER,
                output=output,
                fall_penalty=_given(args.fall_penalty, ant_controller.PPO_OPTIONS["fall_penalty"]),
                min_torso_up=args.min_torso_up,
                learning_rate=args.learning_rate,
                clip_range=args.clip_range,
                action_scale=_given(args.action_scale, ant_controller.PPO_OPTIONS["action_scale"]),
                action_noise=args.noise,
                seed=args.seed,
                evaluate=evaluate,
                ant=args.ant,
                **_passed(total_steps=args.steps, checkpoint_every=args.checkpoint_every),
            )
            print(f"controller written to {output}: {json.dumps(result)}")
            return
        env_options = {
            "action_noise": args.noise,
            "fall_penalty": _given(args.fall_penalty, ant_controller.TRAINING_OPTIONS["fall_penalty"]),
        }
        if args.maze:
            env_options["min_torso_up"] = args.min_torso_up
        result = ant_controller.train_controller(
            args.workdir,
            **_passed(total_steps=args.steps, checkpoint_every=args.checkpoint_every),
            output=output,
            env_options=env_options,
            maze_env_id=args.maze,
            warm_start=args.warm_start,
            seed=args.seed,
            evaluate=evaluate,
            ant=args.ant,
        )
        print(f"controller written to {output}: {json.dumps(result)}")
    elif args.command == "door-replay":
        print(json.dumps(door_replay_error(args.source, args.demos), indent=2))
    else:
        if args.retrain:
            args.controller = args.controller or str(ant_controller.SHIPPED_CONTROLLER)
            ant_controller.train_shipped_controller(
                "runs/goal-reaching-ant", output=args.controller, **_passed(seed=args.seed)
            )
        kwargs = _passed(
            seed=args.seed,
            source=args.source,
            train_steps=args.train_steps,
            bc_steps=args.bc_steps,
            controller_file=args.controller,
            ant=args.ant,
            driving=args.driving,
        )
        for name in args.names:
            start = time.perf_counter()
            built = build(name, size=args.size, overwrite=args.overwrite, **kwargs)
            for dataset in built.values() if isinstance(built, dict) else [built]:
                print(_summary(dataset))
            print(f"{name}: built in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
