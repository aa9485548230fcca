"""A command's settings as a tree of frozen dataclasses, and the one machinery that turns such a tree into flags,
reads it from `--config FILE.yaml` and writes it back.

A config (`TrainConfig`, `TrainVAEConfig`, ...) is a frozen dataclass whose fields are *parts*: frozen dataclasses,
one per idea (the base model, the clips, the temporal layers, the run...). A part's fields are flags of the same
name (`frame_stride` -> `--frame-stride`), each with its default and its help (`opt`), and a part checks its own
values in `__post_init__`; checks that span parts live on the config. Flag names are unique within a config, so
its saved form is flat YAML keyed by flag names, and a command built from several parts gets the flags of exactly
those parts. Precedence: defaults < YAML file < flags given.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import typing
from pathlib import Path
from typing import ClassVar

import yaml

from ldm_video.errors import LdmVideoError

CONFIG_NAME = "train_config.yaml"  # the resolved settings, saved in every run folder
PRESETS_DIR = Path(__file__).with_name("presets")


def opt(help_text: str, choices: tuple | None = None, metavar: str | None = None, const: str | None = None) -> dict:
    """A field's flag: its help, allowed values, metavar, and `const` (the value of the bare flag, for an optional
    argument such as `--resume`)."""
    return {"help": help_text, "choices": choices, "metavar": metavar, "const": const}


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def field_names(part: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(part))


def check_choices(part: object) -> None:
    """LdmVideoError naming the flag when a field with `choices` holds another value."""
    for f in dataclasses.fields(part):
        choices = f.metadata.get("choices")
        if choices and getattr(part, f.name) not in choices:
            raise LdmVideoError(f"{flag_name(f.name)} must be one of {', '.join(choices)}, "
                                f"got {getattr(part, f.name)!r}")


def check_at_least(part: object, names: tuple[str, ...], low: int) -> None:
    """LdmVideoError naming the first flag of `names` below `low`."""
    for name in names:
        if getattr(part, name) < low:
            raise LdmVideoError(f"{flag_name(name)} must be >= {low}, got {getattr(part, name)}")


class ConfigTree:
    """Base of a config made of parts: each dataclass field is a part, its `default_factory` the part with this
    command's defaults (e.g. train-vae's clips default to 9 frames)."""

    DEPRECATED: ClassVar[dict[str, str]] = {}  # old flag spelling -> field (still accepted, with a notice)
    HELP: ClassVar[dict[str, str]] = {}  # a shared flag's help as this command reads it
    DERIVED: ClassVar[tuple[str, ...]] = ()  # fields whose default depends on other settings (`resolve`)

    @classmethod
    def parts(cls) -> list[tuple[str, type, object]]:
        """(attribute, part class, default part) of every part, in order."""
        hints = typing.get_type_hints(cls)
        return [(f.name, hints[f.name], f.default_factory()) for f in dataclasses.fields(cls)]

    @classmethod
    def field_index(cls) -> dict[str, tuple[str, type]]:
        """Flag field -> (attribute, part class); a name in two parts is a programming error."""
        index: dict[str, tuple[str, type]] = {}
        for attr, part, _ in cls.parts():
            for name in field_names(part):
                if name in index:
                    raise TypeError(f"{cls.__name__}: field {name!r} in parts {index[name][0]!r} and {attr!r}")
                index[name] = (attr, part)
        return index

    @classmethod
    def resolve(cls, values: dict) -> dict:
        """Fill the defaults that depend on other settings (`DERIVED`) before construction; the identity here."""
        return values

    @classmethod
    def upgrade(cls, values: dict) -> dict:
        """Values of a saved file (YAML, a checkpoint's config) as this version reads them; the identity here."""
        return values

    @classmethod
    def from_flat(cls, values: dict | None = None, /, source: str = "config", **kw):
        """The config from flat {flag field: value} (each coerced to its field's type; missing ones default)."""
        values = cls.resolve({**(values or {}), **kw})
        index = cls.field_index()
        unknown = sorted(set(values) - set(index))
        if unknown:
            raise LdmVideoError(f"{source}: unknown setting {unknown[0]!r}")
        built = {}
        for attr, part, default in cls.parts():
            given = {n: coerce(part, n, values[n], source) for n in field_names(part) if n in values}
            built[attr] = dataclasses.replace(default, **given) if given else default
        return cls(**built)

    def with_values(self, **flat):
        """A copy with some flag fields changed (checked again)."""
        index = self.field_index()
        by_part: dict[str, dict] = {}
        for name, value in flat.items():
            by_part.setdefault(index[name][0], {})[name] = value
        return dataclasses.replace(self, **{attr: dataclasses.replace(getattr(self, attr), **changes)
                                            for attr, changes in by_part.items()})

    def to_dict(self) -> dict:
        """The flat form: {flag field: value}, tuples as lists (what YAML and checkpoints hold)."""
        out = {}
        for attr, _, _ in self.parts():
            for name, value in dataclasses.asdict(getattr(self, attr)).items():
                out[name] = list(value) if isinstance(value, tuple) else value
        return out


def _base_type(part: type, name: str) -> type:
    hint = typing.get_type_hints(part)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        return tuple
    return args[0] if args else hint


def coerce(part: type, name: str, value: object, source: str) -> object:
    """A YAML / flag value as the field's type; LdmVideoError naming the source otherwise."""
    kind = _base_type(part, name)
    if value is None:
        return None
    try:
        if kind is tuple:
            return tuple(str(v) for v in value) if isinstance(value, (list, tuple)) else (str(value),)
        if kind is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "yes", "1", "on"):
                return True
            if str(value).lower() in ("false", "no", "0", "off"):
                return False
            raise ValueError(value)
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError):
        raise LdmVideoError(f"{source}: {name} must be a {kind.__name__}, got {value!r}") from None


def add_config_arguments(parser: argparse.ArgumentParser, cls: type[ConfigTree], only: tuple[str, ...] | None = None,
                         required: tuple[str, ...] = (), config_flag: bool = True) -> None:
    """The flags of `cls`'s parts, one argument group per part (default shown, value only set when given), their
    old spellings (hidden) and `--config`. `only`: just these fields (a command that reads part of a config, e.g.
    `plan`); `required`: fields the command cannot run without."""
    if config_flag:
        parser.add_argument("--config", metavar="FILE.yaml", default=argparse.SUPPRESS,
                            help="read settings from a YAML file (keys are the flag names, e.g. a run's "
                                 f"{CONFIG_NAME}) or a shipped preset ({', '.join(preset_names())}); flags given win")
    specs: dict[str, dict] = {}
    cls.field_index()  # flag names are unique
    for _, part, default in cls.parts():
        group = None
        for f in dataclasses.fields(part):
            if only is not None and f.name not in only:
                continue
            if group is None:
                group = parser.add_argument_group(part.TITLE)
            kind, meta, value = _base_type(part, f.name), f.metadata, getattr(default, f.name)
            # a default that depends on other settings is resolved later and explained in the help
            hidden = value in (None, ()) or f.name in cls.DERIVED or f.default is None
            help_text = cls.HELP.get(f.name, meta["help"]) + ("" if hidden else f" (default: {value})")
            kwargs: dict = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
            if kind is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            elif kind is tuple:
                kwargs.update(action="append", metavar="TEXT")
            else:
                kwargs.update(type=kind, choices=meta.get("choices"), metavar=meta.get("metavar"))
                if meta.get("const") is not None:
                    kwargs.update(nargs="?", const=meta["const"])
            if f.name in required:
                kwargs["required"] = True
            group.add_argument(flag_name(f.name), **kwargs)
            specs[f.name] = kwargs
    from ldm_video.flags import add_deprecated

    for old, name in cls.DEPRECATED.items():
        if name not in specs:
            continue
        spec = {k: v for k, v in specs[name].items() if k in ("type", "choices", "metavar", "nargs", "const")}
        add_deprecated(parser, old, flag_name(name), name, switch=specs[name].get("action") is
                       argparse.BooleanOptionalAction, default=argparse.SUPPRESS, **spec)


def preset_names() -> list[str]:
    """The training presets shipped with the package (train/presets/*.yaml)."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def config_path(value: str | os.PathLike) -> Path:
    """A --config value as a file: an existing path, else the shipped preset of that name."""
    path = Path(value)
    if path.is_file() or path.suffix in (".yaml", ".yml") or path.parent != Path("."):
        return path
    preset = PRESETS_DIR / f"{value}.yaml"
    if preset.is_file():
        return preset
    raise LdmVideoError(f"{value}: no such config file or preset (presets: {', '.join(preset_names())})")


def load_yaml(path: str | os.PathLike, cls: type[ConfigTree]) -> dict:
    """A config YAML (or preset name) as flat {field: value} of `cls`, as this version reads it; unknown keys and
    bad values are LdmVideoError."""
    path = config_path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as err:
        raise LdmVideoError(f"{path}: cannot read config ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise LdmVideoError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise LdmVideoError(f"{path}: a config must be a mapping of flag names to values")
    index = cls.field_index()
    out = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in index:
            raise LdmVideoError(f"{path}: unknown setting {key!r}")
        out[name] = coerce(index[name][1], name, value, str(path))
    return cls.upgrade(out)


def resolve_config(args: argparse.Namespace, cls: type[ConfigTree]):
    """Defaults, then --config FILE.yaml, then the flags given on the command line: a `cls`."""
    values: dict = {}
    if getattr(args, "config", None):
        values.update(load_yaml(args.config, cls))
    index = cls.field_index()
    for name, value in vars(args).items():
        if name in index:
            values[name] = coerce(index[name][1], name, value, flag_name(name))
    return cls.from_flat(values)


def save_config(config: ConfigTree, path: str | os.PathLike) -> Path:
    """Write the resolved config as flat YAML (atomically); `--config` reads it back to the same config."""
    from ldm_video.files import atomic_write

    path = Path(path)
    text = yaml.safe_dump(config.to_dict(), sort_keys=False)
    atomic_write(path, lambda p: p.write_text(text))
    return path


def config_from_dict(data: dict, cls: type[ConfigTree], source: str = "config"):
    """A config from a saved flat dict (e.g. a checkpoint's), with the same checks as a YAML file; keys this
    version does not know are left out."""
    index = cls.field_index()
    known = {k: coerce(index[k][1], k, v, source) for k, v in data.items() if k in index}
    return cls.from_flat(cls.upgrade(known), source=source)
