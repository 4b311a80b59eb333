"""
``sb3-iql``: the things users run from a shell.

    sb3-iql datasets list | build NAME... | train-ant   # sb3_iql.datasets (see --help)
    sb3-iql offline DATASET... [options]                # the paper's Table 1 protocol (benchmarks/offline.py)
    sb3-iql finetune DATASET... [options]               # the paper's Table 2 protocol (benchmarks/finetune.py)
    sb3-iql speed [options]                             # the speed benchmark (benchmarks/speed.py)
"""

import runpy
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
RUNNERS = {"offline": "offline.py", "finetune": "finetune.py", "speed": "speed.py"}


def main(argv: list[str] | None = None) -> None:
    """Dispatch ``sb3-iql COMMAND ...`` to the datasets CLI or a protocol runner."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = ["datasets", *RUNNERS]
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        print(__doc__.strip())
        if argv and argv[0] not in ("-h", "--help"):
            raise SystemExit(f"sb3-iql: unknown command '{argv[0]}'; choose one of {', '.join(commands)}.")
        return
    command, rest = argv[0], argv[1:]
    if command == "datasets":
        from sb3_iql.datasets.__main__ import main as datasets_main

        datasets_main(rest)
        return
    script = BENCHMARKS / RUNNERS[command]
    if not script.is_file():
        raise SystemExit(
            f"sb3-iql {command} runs {script.name} from the benchmarks/ folder of a source checkout, which this install "
            "lacks: clone the repository and `pip install -e .` from it."
        )
    sys.path.insert(0, str(BENCHMARKS))
    sys.argv = [f"sb3-iql {command}", *rest]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
