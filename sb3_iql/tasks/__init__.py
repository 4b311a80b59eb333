"""The tasks sb3-iql knows by name: their maps, constants and evaluation envs. The lowest layer: it imports no other."""

import contextlib
import io
import sys

#: Farama's notice that Gymnasium-Robotics 1.2.1-1.4.2 print on import (``farama_notifications``): the
#: ``AdroitHand*Dense-v1`` reward functions changed in 1.2.1 without a new env version.
ADROIT_REWARD_NOTICE = "reward functions were updated in v1.2.1 without an environment version update"


def import_gymnasium_robotics() -> None:
    """
    Import Gymnasium-Robotics (its mazes and Adroit hands) without printing ``ADROIT_REWARD_NOTICE``, which it prints
    to stderr on import, every import of sb3-iql included. The notice is for users of those dense rewards who compare
    with results made before 1.2.1; sb3-iql's Adroit tasks reward ``info["success"]`` (``BinaryReward``) or are scored
    in the installed version, as every result here was. Anything else printed while importing still reaches stderr.
    """
    if "gymnasium_robotics" in sys.modules:
        return
    printed = io.StringIO()
    with contextlib.redirect_stderr(printed):
        import gymnasium_robotics  # noqa: F401
    rest = [line for line in printed.getvalue().splitlines(keepends=True) if ADROIT_REWARD_NOTICE not in line]
    sys.stderr.write("".join(rest))


import_gymnasium_robotics()
