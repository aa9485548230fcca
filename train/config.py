"""The configuration of `ldm-video train` (and of `plan` and `data preview`, which read parts of it): a tree of
frozen parts, one per idea, built by the machinery in `ldm_video.train.settings`. Each field is the flag of the
same name; the saved `train_config.yaml` is the flat form (keys = flag names), which `--config` reads back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar

from ldm_video.config import MOTION_NORMS, TEMPORAL_LAYERS, VideoUNetConfig
from ldm_video.errors import LdmVideoError
from ldm_video.noise import NOISE_PRIORS
from ldm_video.train.objective import TIMESTEP_BIAS
from ldm_video.train.parts import BaseModel, ClipData, RunSettings
from ldm_video.train.settings import ConfigTree, check_at_least, check_choices, opt

_UNET = VideoUNetConfig()  # the temporal layers' defaults live there
DEFAULT_CONTEXT_PROB = 0.5  # share of clips given context frames when --context-frames is on


@dataclass(frozen=True)
class ModelSources(BaseModel):
    """The base, and what the trained model starts from or is fed by: its motion module, its VAE, its kernels."""

    TITLE: ClassVar[str] = "model"

    init_motion: str | None = field(default=None, metadata=opt(
        "start the temporal attention from a motion module: AnimateDiff .safetensors/.ckpt (e.g. mm_sd_v15_v2), a "
        "MotionAdapter folder or an ldm-video run; its heads, transformer layers and mid block are taken over",
        metavar="FILE|DIR"))
    vae: str | None = field(default=None, metadata=opt(
        "video VAE folder from `ldm-video train-vae` (temporal-decoder or causal3d) to encode clips with; "
        "a causal3d VAE needs 4f+1 --frames and the U-Net trains on its f+1 latent frames (default: the base's VAE)"))
    attention_backend: str = field(default="sdpa", metadata=opt("attention kernels", ("sdpa", "xformers")))

    def __post_init__(self) -> None:
        check_choices(self)


@dataclass(frozen=True)
class TemporalLayers:
    """The temporal layers injected and trained: `VideoUNetConfig`'s fields of the same names (and defaults)."""

    TITLE: ClassVar[str] = "temporal layers"

    temporal_layers: str = field(default=_UNET.temporal_layers, metadata=opt(
        "temporal layers to inject and train: attn (AnimateDiff motion modules; every export format takes them), "
        "conv (VidRD temporal convolutions; native format only) or attn+conv (export --format motion-adapter / "
        "animatediff keep only the attention). attn is the default by measurement: on the toy world attn+conv took "
        "41%% longer per step for +0.09 held-out motion, inside the +-0.15 spread of 8-clip scores (benchmarks/RESULTS.md, 2026-12-03)",
        TEMPORAL_LAYERS))
    attention_heads: int = field(default=_UNET.attention_heads, metadata=opt("heads of each temporal attention"))
    attention_layers: int = field(default=_UNET.attention_layers, metadata=opt(
        "transformer blocks per motion module (AnimateDiff: 1)"))
    mid_block: bool = field(default=_UNET.mid_block, metadata=opt("temporal layers in the U-Net's mid block too"))
    max_frames: int = field(default=_UNET.max_frames, metadata=opt(
        "clip length the temporal attention's frame positions cover (at least --frames; generation with longer "
        "clips needs it larger)"))
    conv_depth: int = field(default=_UNET.conv_depth, metadata=opt("layers per VidRD temporal-conv stack"))
    conv_dropout: float = field(default=_UNET.conv_dropout, metadata=opt(
        "dropout inside the temporal-conv stacks (VidRD: 0.1)"))
    lora_rank: int = field(default=_UNET.lora_rank, metadata=opt(
        "LoRA rank on the spatial attention projections, trained with the temporal layers (0 = off)"))
    lora_alpha: float = field(default=_UNET.lora_alpha, metadata=opt(
        "LoRA alpha: the LoRA update is scaled by alpha / rank (0 = the rank, scale 1); exports keep it"))
    motion_norm: str = field(default=_UNET.motion_norm, metadata=opt(
        "GroupNorm at the input of each motion module: over all frames (diffusers' AnimateDiff) or per frame "
        "(original AnimateDiff, A1111, ComfyUI-AnimateDiff-Evolved); train for the tool you will run the module in",
        MOTION_NORMS))

    def __post_init__(self) -> None:
        check_at_least(self, ("attention_heads", "attention_layers", "max_frames", "conv_depth"), 1)
        check_at_least(self, ("lora_rank",), 0)
        if not self.lora_alpha >= 0:
            raise LdmVideoError(f"--lora-alpha must be >= 0, got {self.lora_alpha}")
        if self.lora_alpha and not self.lora_rank:
            raise LdmVideoError("--lora-alpha needs --lora-rank > 0 (there is no LoRA to scale)")
        if not 0.0 <= self.conv_dropout < 1.0:
            raise LdmVideoError(f"--conv-dropout must be in [0, 1), got {self.conv_dropout}")
        check_choices(self)

    def video_unet_config(self, frames: int, context_causal: bool = False) -> VideoUNetConfig:
        """These layers for clips of `frames` frames (the frame positions cover at least that many)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["max_frames"] = max(self.max_frames, frames)
        return VideoUNetConfig(**values, context_causal=context_causal)


@dataclass(frozen=True)
class TrainData(ClipData):
    """The clips train reads: from a media folder (`ClipData`, shared with prepare and data preview) or a latent
    cache, and how often images come up."""

    cache: str | None = field(default=None, metadata=opt(
        "latent cache folder written by `ldm-video prepare` (used instead of --data)"))
    cache_latents: bool = field(default=False, metadata=opt(
        "encode --data into OUTPUT_DIR/latent-cache first, then train from it without VAE / text encoder"))
    image_share: float | None = field(default=None, metadata=opt(
        "fraction of batches drawn from images (default: their share of the folder)"))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cache and self.data:
            raise LdmVideoError("--cache and --data are alternatives: the cache already holds the encoded clips")

    def data_config(self, image_share: float | None = None):
        return super().data_config(self.image_share if image_share is None else image_share)


@dataclass(frozen=True)
class Objective:
    """What a training step optimises: the noise prior, the timestep distribution and caption dropout."""

    TITLE: ClassVar[str] = "objective"

    noise_prior: str = field(default="mixed", metadata=opt(
        "training noise prior (PYoCo): iid, mixed (eq. 3) or progressive (eq. 4)", tuple(NOISE_PRIORS)))
    noise_alpha: float = field(default=1.0, metadata=opt(
        "prior strength alpha (PYoCo: 1 best for mixed, 2 for progressive)"))
    timestep_bias: str = field(default="none", metadata=opt(
        "draw training timesteps more often from the noisiest (later) or least noisy (earlier) "
        "--timestep-bias-portion of the schedule (diffusers' timestep bias)", TIMESTEP_BIAS))
    timestep_bias_multiplier: float = field(default=1.0, metadata=opt(
        "how much more often the biased timesteps are drawn"))
    timestep_bias_portion: float = field(default=0.25, metadata=opt(
        "fraction of the schedule the bias applies to"))
    caption_dropout: float = field(default=0.1, metadata=opt(
        "probability of training a sample with the empty caption (keeps classifier-free guidance working)"))

    def __post_init__(self) -> None:
        if not (self.timestep_bias_multiplier > 0 and 0 < self.timestep_bias_portion <= 1):
            raise LdmVideoError("--timestep-bias-multiplier must be > 0 and --timestep-bias-portion in (0, 1], got "
                                f"{self.timestep_bias_multiplier} and {self.timestep_bias_portion}")
        if not self.noise_alpha >= 0:
            raise LdmVideoError(f"--noise-alpha must be >= 0, got {self.noise_alpha}")
        if not 0.0 <= self.caption_dropout <= 1.0:
            raise LdmVideoError(f"--caption-dropout must be in [0, 1], got {self.caption_dropout}")
        check_choices(self)


@dataclass(frozen=True)
class ContextFrames:
    """Training to continue a video: some clips' first frames are given (clean or lightly noised), not denoised."""

    TITLE: ClassVar[str] = "context frames"

    context_frames: int = field(default=0, metadata=opt(
        "train the temporal layers to continue a video: in a --context-prob share of the clips the first N frames "
        "are given clean (timestep 0) and only the rest is denoised and scored; `generate --extend context` then "
        "starts each later clip from the previous clip's last N frames (latent frames with a causal 3D --vae; "
        "0 = off)", metavar="N"))
    context_causal: bool = field(default=False, metadata=opt(
        "block-causal context: the --context-frames attend only to each other, never to the frames being denoised, "
        "so `generate --extend context` computes them once per clip and caches their keys and values instead of "
        "denoising them at every step (about half the work per new frame); needs --motion-norm per-frame and "
        "--temporal-layers attn"))
    context_prob: float | None = field(default=None, metadata=opt(
        f"share of the training clips that get --context-frames clean frames (default: {DEFAULT_CONTEXT_PROB} "
        "with --context-frames)"))
    context_noise: int = field(default=0, metadata=opt(
        "noise augmentation of the --context-frames: each clip's given frames are noised to a random timestep in "
        "[0, T] and told that timestep, so that the layers learn to continue imperfect frames (their own, in a long "
        "video; SVD / Diffusion Forcing); 0 = given clean", metavar="T"))
    context_slowdown: float = field(default=0.0, metadata=opt(
        "history slow-down: in this share of the clips given --context-frames, the given frames are replayed slower "
        "than they happened (a random speed, down to a freeze) while the rest keeps its pace, so that the layers "
        "learn to keep a motion going after frames that hesitate, as a long video's own do at turns (on the toy "
        "world it did not help long videos: benchmarks/RESULTS.md); 0 = off",
        metavar="P"))

    def __post_init__(self) -> None:
        if self.context_frames < 0:
            raise LdmVideoError(f"--context-frames must be >= 0, got {self.context_frames}")
        if self.context_causal and not self.context_frames:
            raise LdmVideoError("--context-causal needs --context-frames N > 0 (there are no given frames to keep "
                                "causal)")
        if self.context_prob is not None and not self.context_frames:
            raise LdmVideoError(f"--context-prob {self.context_prob} needs --context-frames N > 0 (there are no "
                                "context frames to give)")
        if not 0.0 < self.prob <= 1.0:
            raise LdmVideoError(f"--context-prob must be in (0, 1], got {self.context_prob}")
        if self.context_noise and not self.context_frames:
            raise LdmVideoError(f"--context-noise {self.context_noise} needs --context-frames N > 0 (there are no "
                                "context frames to noise)")
        if self.context_noise < 0:
            raise LdmVideoError(f"--context-noise must be >= 0, got {self.context_noise}")
        if not 0.0 <= self.context_slowdown <= 1.0:
            raise LdmVideoError(f"--context-slowdown must be in [0, 1], got {self.context_slowdown}")
        if self.context_slowdown and not self.context_frames:
            raise LdmVideoError(f"--context-slowdown {self.context_slowdown} needs --context-frames N > 0 (there are "
                                "no context frames to slow down)")

    @property
    def prob(self) -> float:
        """The share of clips given context frames (--context-prob, or its default)."""
        return DEFAULT_CONTEXT_PROB if self.context_prob is None else self.context_prob


@dataclass(frozen=True)
class Optimiser:
    """Train's choice of optimiser and the moving average of its weights (train-vae uses AdamW, no average)."""

    TITLE: ClassVar[str] = "optimiser"

    optimizer: str = field(default="adamw", metadata=opt(
        "adamw (torch) or adamw8bit (bitsandbytes; 8-bit states)", ("adamw", "adamw8bit")))
    ema: bool = field(default=False, metadata=opt(
        "keep an exponential moving average of the trained weights; the output holds the EMA weights"))
    ema_decay: float = field(default=0.999, metadata=opt("EMA decay"))

    def __post_init__(self) -> None:
        if not 0.0 < self.ema_decay < 1.0:
            raise LdmVideoError(f"--ema-decay must be in (0, 1), got {self.ema_decay}")
        check_choices(self)


@dataclass(frozen=True)
class Validation:
    """Validation videos sampled during training."""

    TITLE: ClassVar[str] = "validation"

    validate_every: int = field(default=0, metadata=opt(
        "every N steps (and at the end) sample the validation prompts to mp4 (0 = never)"))
    validation_prompt: tuple[str, ...] = field(default=(), metadata=opt(
        "prompt for validation videos (repeat the flag for several)"))
    validation_steps: int = field(default=25, metadata=opt("DDIM steps of validation sampling"))
    validation_guidance: float = field(default=7.5, metadata=opt("classifier-free guidance of validation"))

    def __post_init__(self) -> None:
        check_at_least(self, ("validation_steps",), 1)
        check_at_least(self, ("validate_every",), 0)
        if self.validate_every and not self.validation_prompt:
            raise LdmVideoError("--validate-every needs at least one --validation-prompt")
        if self.validation_prompt and not self.validate_every:
            raise LdmVideoError("--validation-prompt needs --validate-every N (how often to sample it)")


@dataclass(frozen=True)
class TrainConfig(ConfigTree):
    """Everything `ldm-video train` reads, one part per idea; `TrainConfig.from_flat(frames=8, ...)` builds one from
    flag values, `to_dict()` is the flat form saved as train_config.yaml."""

    model: ModelSources = field(default_factory=ModelSources)
    temporal: TemporalLayers = field(default_factory=TemporalLayers)
    data: TrainData = field(default_factory=TrainData)
    objective: Objective = field(default_factory=Objective)
    context: ContextFrames = field(default_factory=ContextFrames)
    run: RunSettings = field(default_factory=RunSettings)
    optimiser: Optimiser = field(default_factory=Optimiser)
    validation: Validation = field(default_factory=Validation)

    def __post_init__(self) -> None:
        if self.model.init_motion and self.temporal.temporal_layers == "conv":
            raise LdmVideoError("--init-motion loads temporal attention; --temporal-layers conv has none "
                                "(use attn or attn+conv)")
        if not self.context.context_frames < self.data.frames:
            raise LdmVideoError(f"--context-frames must be in [0, --frames), got {self.context.context_frames} with "
                                f"--frames {self.data.frames} (some frames must be left to denoise)")
        if self.context.context_causal and (self.temporal.temporal_layers != "attn"
                                            or self.temporal.motion_norm != "per-frame"):
            raise LdmVideoError("--context-causal needs --temporal-layers attn and --motion-norm per-frame (temporal "
                                "convolutions and an all-frames GroupNorm mix the given frames with the others), got "
                                f"{self.temporal.temporal_layers} and {self.temporal.motion_norm}")

    @classmethod
    def resolve(cls, values: dict) -> dict:
        """--context-prob's default, recorded when context frames are on."""
        if values.get("context_frames") and values.get("context_prob") is None:
            values = {**values, "context_prob": DEFAULT_CONTEXT_PROB}
        return values

    @classmethod
    def upgrade(cls, values: dict) -> dict:
        """A saved config records --context-prob's default (0.5) as resolved, and configs from before it defaulted by
        --context-frames recorded it with context frames off too: in a file it reads as not given, so that such a
        file, with --context-frames 0 given or recorded, loads."""
        if values.get("context_prob") == DEFAULT_CONTEXT_PROB:
            values = {k: v for k, v in values.items() if k != "context_prob"}
        return values

    def video_unet_config(self, frames: int | None = None) -> VideoUNetConfig:
        """The temporal layers this run trains (`frames`: the U-Net's frames per clip, default --frames)."""
        return self.temporal.video_unet_config(frames or self.data.frames, self.context.context_causal)
