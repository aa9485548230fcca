"""User-facing errors: one line, naming the file and the reason; the CLI prints them without a traceback."""


class LdmVideoError(Exception):
    """An error caused by the user's input (a path, a flag, a file), reported as one line."""


class BaseModelError(LdmVideoError):
    """The base model is missing or is not a Stable Diffusion 2.x diffusers folder."""


class CheckpointMismatchError(LdmVideoError):
    """Saved temporal layers (or LoRA) belong to a different base U-Net than the one given."""
