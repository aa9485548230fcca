"""Writing files and folders so that readers never see half of one: atomic file and folder writes, the one
folder-replacement rule, umask-respecting modes for temporary names, and writability checks that fail in one line
before any work."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ldm_video.errors import LdmVideoError


def usual_mode(path: str | os.PathLike) -> None:
    """Give a file or folder made by mkstemp / mkdtemp (0600 / 0700) the mode a plain open / mkdir would give
    under the current umask (e.g. 0644 / 0755), so a shared run folder is readable by others as usual."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~mask)


def _folder_problem(folder: Path) -> str | None:
    """Make `folder` (and its parents); why files cannot be written in it, or None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return str(err.strerror or err)
    return None if os.access(folder, os.W_OK | os.X_OK) else f"{folder} is not writable"


def writable_folder(folder: str | os.PathLike, what: str) -> Path:
    """Make `folder` and check files can be written in it; LdmVideoError naming it otherwise."""
    folder = Path(folder)
    problem = _folder_problem(folder)
    if problem:
        raise LdmVideoError(f"{folder}: cannot write the {what} there ({problem})")
    return folder


def check_writable(path: str | os.PathLike, what: str = "output") -> None:
    """LdmVideoError (one line, naming `path`) unless a file can be written at `path`; makes its parents."""
    problem = _folder_problem(Path(path).parent)
    if problem:
        raise LdmVideoError(f"{path}: cannot write the {what} there ({problem})")


def atomic_write(path: Path, write) -> None:
    """Call `write(tmp_path)`, then rename onto `path`: readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        usual_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_folder(out_dir: str | os.PathLike, fill) -> Path:
    """Call `fill(tmp_folder)` on a fresh sibling folder, then move it onto `out_dir` (an older one is replaced only
    once the new one is complete): readers see the old folder or the new one, never half of one. The one
    folder-level counterpart of `atomic_write` (video-VAE folders, latent caches, the toy base)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        fill(tmp)
        usual_mode(tmp)  # mkdtemp made it 0700
        replace_folder(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def replace_folder(new: Path, out_dir: Path) -> Path:
    """Move the complete folder `new` onto `out_dir`; an older `out_dir` is moved aside first and deleted after."""
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out_dir, old)
    os.replace(new, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out_dir


def read_safetensors(path: str | os.PathLike) -> dict:
    """The tensors of a safetensors file; a missing, truncated or foreign file is one LdmVideoError naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise LdmVideoError(f"{path}: unreadable safetensors file ({err})") from None
