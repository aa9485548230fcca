"""The command grammar's shared pieces: one spelling per idea across commands (`--output-dir` for run folders,
`--out` for files / artefacts, `--max-steps`, `--resume`, `--config`, `--threads`, `--no-progress`), and old
spellings kept for one release behind a one-line deprecation notice."""

from __future__ import annotations

import argparse
import sys


class DeprecatedFlag(argparse.Action):
    """An old spelling of a flag: stores into the new flag's destination and says so once on stderr."""

    def __init__(self, option_strings, dest, new: str, **kwargs) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"{parser.prog}: {option_string} is deprecated and will be removed in the next release; use "
              f"{self.new}", file=sys.stderr)
        setattr(namespace, self.dest, self.const if values is None or values == [] else values)


def add_deprecated(parser: argparse.ArgumentParser | argparse._ActionsContainer, old: str, new: str, dest: str,
                   switch: bool = False, **kwargs) -> None:
    """`old` (hidden from --help) keeps working as `new` (destination `dest`); `switch` for an on/off flag.
    A required flag and its old spelling go in one `add_mutually_exclusive_group(required=True)`, so that either
    spelling satisfies it."""
    if switch:
        kwargs.update(nargs=0, const=True)
    parser.add_argument(old, dest=dest, action=DeprecatedFlag, new=new, help=argparse.SUPPRESS, **kwargs)


def add_threads(parser: argparse.ArgumentParser, default: int = 0) -> None:
    shown = "torch's choice" if default == 0 else str(default)
    parser.add_argument("--threads", type=int, default=default, help=f"torch CPU threads (default: {shown})")


def set_threads(threads: int) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def hide_library_progress() -> None:
    """`--no-progress`: also silence the loading bars of diffusers, transformers and huggingface_hub."""
    import diffusers
    import huggingface_hub
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    huggingface_hub.utils.disable_progress_bars()
