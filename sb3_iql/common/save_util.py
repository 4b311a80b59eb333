"""Saving that never leaves a broken file behind: write beside the target, then rename over it."""

import io
import os
import pathlib
import tempfile
from collections.abc import Callable
from typing import Union

PathOrFile = Union[str, pathlib.Path, io.BufferedIOBase]


def final_path(path: Union[str, pathlib.Path], suffix: str) -> pathlib.Path:
    """:return: The file SB3 writes for ``path``: ``suffix`` is appended where the name has none (SB3's ``open_path``)."""
    path = pathlib.Path(path)
    return path if path.suffix else pathlib.Path(f"{path}.{suffix}")


def save_atomically(path: PathOrFile, suffix: str, write: Callable[[PathOrFile], None]) -> None:
    """
    Call ``write`` on a temporary file in the target's folder, then rename it onto the target.

    The rename is atomic, so an interruption (an error, Ctrl-C, a killed process) leaves either the
    previous file or the new one, never a partial one. File objects are written directly.

    :param path: Where to save (SB3's convention: ``suffix`` is appended to a name without one), or a file object
    :param suffix: The file type, ``"zip"`` for models or ``"pkl"`` for replay buffers
    :param write: Writes the content to the path it is given
    """
    if not isinstance(path, (str, os.PathLike)):
        write(path)
        return
    target = final_path(path, suffix)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp.{suffix}", dir=target.parent)
    os.close(descriptor)
    try:
        write(pathlib.Path(temporary))
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
