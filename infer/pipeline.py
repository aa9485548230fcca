"""Text -> video latents -> frames, clip by clip (VidRD, Gu et al., arXiv 2309.03549, §4.3), streamed.

The data path, top to bottom: the prompt is encoded once; the first clip starts from a PYoCo noise prior
(Ge et al., ICCV 2023); each later clip starts from the previous clip's initial noise (FNR + PNS) and holds
its first M frames to the previous clip's trajectory for the first steps (DSG) — or, for temporal layers
trained with context frames (`extend="context"`), is given the previous clip's last M final latents clean at
timestep 0 and denoises the rest from fresh noise (frame conditioning, LVDM, He et al. 2022), its guidance's
unconditional branch optionally without them (history guidance, Song et al. 2025: the new frames alone, run in the
same U-Net call as the row with them, or the given ones noised to the step; optionally a third row weighs them apart
from the prompt); each clip is denoised by the video U-Net with classifier-free guidance and a diffusers scheduler,
then decoded in frame chunks and handed on at once (by the SD VAE per frame, or VidRD's temporal-aware decoder with
the chunk's true frame count). Only one clip, its initial noise and the DSG store are alive at a time, so memory does
not grow with the number of frames.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    PNDMScheduler,
)
from einops import rearrange
from tqdm.auto import tqdm

from ldm_video.causal import ContextCache
from ldm_video.infer.prompts import PromptSchedule, clip_weights
from ldm_video.infer.vidrd import DSGTrajectory, VidRDConfig, clip_starts, dsg_hold_steps, next_clip_noise
from ldm_video.noise import NOISE_PRIORS, video_noise
from ldm_video.text import encode_prompts
from ldm_video.vae import ImageVAE, VideoVAE
from ldm_video.video_unet import VideoClip

# --scheduler name -> (diffusers class, config overrides); all deterministic
SCHEDULERS: dict[str, tuple[type, dict]] = {
    "ddim": (DDIMScheduler, {}),
    "dpm++": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "euler": (EulerDiscreteScheduler, {}),
    "pndm": (PNDMScheduler, {"skip_prk_steps": True}),  # PLMS, as SD's own PNDM config
}
# freenoise: diffusers' pipeline (ldm_video.infer.freenoise); context: a model trained with train --context-frames
EXTEND_MODES = ("vidrd", "context", "independent", "freenoise")
CONTEXT_INITS = ("fresh", "last-frame")  # where a context clip's new frames start (LongVideoConfig.context_init)
HISTORY_FREE = ("noised", "dropped")  # how history guidance's rows go without the given frames (LongVideoConfig)
# the new frames alone paced the held-out shape more, at equal steps (benchmarks/RESULTS.md, "History guidance
# without the given frames at all", 2026-12-07)
DEFAULT_HISTORY_FREE = "dropped"


@dataclass(frozen=True)
class SamplingConfig:
    """How one clip is denoised."""

    scheduler: str = "ddim"  # key of SCHEDULERS
    steps: int = 50  # denoising steps per clip
    guidance: float = 7.5  # classifier-free guidance scale; <= 1 turns guidance off (one U-Net batch)
    noise_prior: str = "iid"  # PYoCo prior of the first clip's initial noise: iid, mixed, progressive
    noise_alpha: float = 0.0  # PYoCo alpha (mixed: 1 is best, progressive: 2)
    height: int = 256  # pixels, multiple of 8
    width: int = 256  # pixels, multiple of 8
    seed: int = 0  # same seed, same video

    def __post_init__(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {self.scheduler!r}; choose from {', '.join(SCHEDULERS)}")
        if self.noise_prior not in NOISE_PRIORS:
            raise ValueError(f"unknown noise prior {self.noise_prior!r}; choose from {', '.join(NOISE_PRIORS)}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.height % 8 or self.width % 8 or self.height < 8 or self.width < 8:
            raise ValueError(f"height and width must be positive multiples of 8, got {self.height}x{self.width}")


@dataclass(frozen=True)
class LongVideoConfig:
    """How clips make up the video."""

    num_frames: int = 16  # latent frames in the output, exactly (= pixel frames unless the VAE compresses time)
    # "vidrd" (FNR + PNS + DSG), "context" (the previous clip's last M final frames given clean, fresh noise for
    # the rest) or "independent" (fresh prior noise per clip)
    extend: str = "vidrd"
    vidrd: VidRDConfig = field(default_factory=VidRDConfig)  # clip length, overlap, PNS alpha, DSG beta
    seam_drop: int = 0  # leading frames of every later clip left out of the output
    decode_chunk: int = 8  # frames per VAE decode call
    # extend "context": the given frames are noised to this timestep (and told so), as the layers were trained
    # with `train --context-noise`; 0 gives them clean
    context_noise: int = 0
    # extend "context": the new frames of a later clip start from fresh noise ("fresh") or from the last given frame
    # diffused to the first timestep ("last-frame"), which carries its low frequencies (the scene's colours) over
    context_init: str = "fresh"
    # extend "context": shift each new frame's latent channel means to the first clip's, after denoising
    context_anchor: bool = False
    # extend "context", guidance > 1: the unconditional branch also goes without the given frames (they take the
    # forward process of the previous clip's frames to each step's timestep, as in the clips trained without
    # context), so guidance pulls the new frames toward continuing them as well as toward the prompt
    context_guidance: bool = False
    # extend "context", with context_guidance: the weight of the given frames apart from the prompt's (a third
    # U-Net row, the prompt without the given frames); None weighs both by the guidance scale (two rows)
    history_scale: float | None = None
    # extend "context", with context_guidance (else unused): the rows without the given frames run the new frames
    # alone, a clip without history ("dropped": M fewer frames), or hold the given frames' places noised to each
    # step's timestep ("noised")
    history_free: str = DEFAULT_HISTORY_FREE

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.extend not in EXTEND_MODES:
            raise ValueError(f"extend must be one of {EXTEND_MODES}, got {self.extend!r}")
        if not 0 <= self.seam_drop < self.vidrd.clip_frames:
            raise ValueError(f"seam_drop must be in [0, clip_frames), got {self.seam_drop}")
        if self.extend == "context" and (self.vidrd.overlap < 1 or self.seam_drop != self.vidrd.overlap):
            raise ValueError("extend 'context' needs overlap >= 1 and seam_drop == overlap (the given frames are "
                             f"copies of the previous clip's), got overlap {self.vidrd.overlap}, seam_drop "
                             f"{self.seam_drop}")
        if self.decode_chunk < 1:
            raise ValueError(f"decode_chunk must be >= 1, got {self.decode_chunk}")
        if self.context_init not in CONTEXT_INITS or (self.context_init != "fresh" and self.extend != "context"):
            raise ValueError(f"context_init is one of {CONTEXT_INITS} (not 'fresh' only with extend 'context'), got "
                             f"{self.context_init!r} with extend {self.extend!r}")
        if self.context_anchor and self.extend != "context":
            raise ValueError(f"context_anchor applies to extend 'context' only, got extend {self.extend!r}")
        if self.context_guidance and self.extend != "context":
            raise ValueError(f"context_guidance applies to extend 'context' only, got extend {self.extend!r}")
        if self.history_scale is not None and not (self.context_guidance and math.isfinite(self.history_scale)
                                                   and self.history_scale >= 0):
            raise ValueError(f"history_scale must be a number >= 0, with context_guidance; got {self.history_scale} "
                             f"(context_guidance {self.context_guidance})")
        if self.history_free not in HISTORY_FREE:
            raise ValueError(f"history_free is one of {HISTORY_FREE}, got {self.history_free!r}")
        if self.context_noise < 0 or (self.context_noise and self.extend != "context"):
            raise ValueError(f"context_noise is a timestep >= 0 for extend 'context' only, got {self.context_noise} "
                             f"with extend {self.extend!r}")

    @property
    def clip_frames(self) -> int:
        """Frames denoised together: --clip-frames, or fewer when the whole video is shorter."""
        return min(self.vidrd.clip_frames, self.num_frames)

    def kept_frames(self, clip: int) -> tuple[int, int]:
        """[start, end) of the frames of clip `clip` that go to the output."""
        starts = self.starts
        first = 0 if clip == 0 else self.seam_drop
        end = starts[clip + 1] if clip + 1 < len(starts) else self.num_frames
        return first, first + end - starts[clip]

    def clip_start(self, clip: int) -> int:
        """The output frame where clip `clip`'s frames in the output begin."""
        return self.starts[clip]

    @property
    def starts(self) -> list[int]:
        """Every clip's first output frame (`vidrd.clip_starts`, the one layout): clips after the first add
        clip_frames - seam_drop frames."""
        n = self.clip_frames
        return clip_starts(self.num_frames, n, n - self.seam_drop)

    def output_starts(self, frames_per_latent: int = 1) -> list[int]:
        """The output (pixel) frame where each clip's frames in the output begin; a causal 3D VAE decodes latent
        frame l >= 1 to pixel frames (l - 1) * frames_per_latent + 1 .. l * frames_per_latent."""
        return [0 if lat == 0 else (lat - 1) * frames_per_latent + 1 for lat in self.starts]

    @property
    def num_clips(self) -> int:
        return len(self.starts)


def make_scheduler(name: str, base_scheduler_config) -> object:
    """A fresh diffusers scheduler of kind `name` with the base model's noise schedule."""
    cls, overrides = SCHEDULERS[name]
    return cls.from_config(dict(base_scheduler_config), **overrides)


@torch.no_grad()
def encode_prompt(tokenizer, text_encoder, prompt: str, negative_prompt: str, guidance: float,
                  device, dtype) -> torch.Tensor:
    """CLIP text embeddings, [negative, prompt] when guidance > 1, as StableDiffusionPipeline does: (1|2, seq, dim)."""
    prompts = [negative_prompt, prompt] if guidance > 1 else [prompt]
    return encode_prompts(tokenizer, text_encoder, prompts).to(device=device, dtype=dtype)  # (1|2, seq, dim)


class PromptEmbeddings:
    """Text embeddings per clip for a prompt schedule (each prompt encoded once, blends mixed per clip)."""

    def __init__(self, base, schedule: PromptSchedule, negative: str, guidance: float, video: LongVideoConfig,
                 frames_per_latent: int, device, dtype, edit: float = 0.0):
        self.cache: dict[str, torch.Tensor] = {}
        self.edit = edit  # fraction of each later prompt's clip steps that still use the first prompt
        self.schedule = schedule
        self.base, self.negative, self.guidance, self.device, self.dtype = base, negative, guidance, device, dtype
        self.weights = clip_weights(schedule, video.output_starts(frames_per_latent))  # by each clip's first frame

    def _encode(self, prompt: str) -> torch.Tensor:
        if prompt not in self.cache:
            self.cache[prompt] = encode_prompt(self.base.tokenizer, self.base.text_encoder, prompt, self.negative,
                                               self.guidance, self.device, self.dtype)  # (2|1, seq, dim)
        return self.cache[prompt]

    def _mix(self, mix: dict[int, float]) -> torch.Tensor:
        return sum(w * self._encode(self.schedule.prompts[i]) for i, w in mix.items())  # (2|1, seq, dim)

    def __call__(self, clip: int):
        now = self._mix(self.weights[clip])
        if self.edit == 0 or self.weights[clip] == {0: 1.0}:
            return now
        layout = self._encode(self.schedule.prompts[0])  # the layout steps keep the video's first prompt
        return lambda done: layout if done < self.edit else now


@dataclass
class VideoChunk:
    """Final frames handed on as soon as they are decoded."""

    clip: int  # index of the clip they belong to
    latents: torch.Tensor  # (1, 4, f, h, w) final latents (U-Net scale, i.e. times vae_scale)
    frames: torch.Tensor  # (f, 3, H, W) decoded, float in [-1, 1]


@dataclass
class VideoSampler:
    """Samples a long video clip by clip and yields decoded chunks; see the module docstring."""

    model: torch.nn.Module  # VideoUNet: (b, c, f, h, w), t, (b, seq, dim) -> .sample (b, c, f, h, w)
    vae: torch.nn.Module  # ldm_video.vae.VideoVAE (any kind), or a diffusers AutoencoderKL
    scheduler_config: dict  # the base model's scheduler config (noise schedule, prediction type)
    sampling: SamplingConfig
    video: LongVideoConfig
    progress: bool = True  # tqdm bars over clips and steps
    # a block-causal model (context_causal) runs the given frames once per clip and caches their keys and values;
    # False runs them at every step under the block-causal mask instead (the same result: the reference the
    # cache is tested and benchmarked against)
    cache_context: bool = True

    def __post_init__(self) -> None:
        if self.video.extend == "freenoise":
            raise ValueError("FreeNoise runs in diffusers' AnimateDiffPipeline (ldm_video.infer.freenoise), "
                             "not in VideoSampler")
        if self.video.history_scale is not None and self.sampling.guidance <= 1:
            raise ValueError(f"history_scale weighs rows of classifier-free guidance, which guidance "
                             f"{self.sampling.guidance:g} (<= 1) turns off")
        self.device = next(self.model.parameters()).device
        self.dtype = next(self.model.parameters()).dtype
        if not isinstance(self.vae, VideoVAE):
            self.vae = ImageVAE(self.vae)  # the SD VAE frame by frame
        self.vae_scale = self.vae.scaling_factor
        self.latent_shape = (1, 4, self.video.clip_frames, self.sampling.height // 8, self.sampling.width // 8)
        self.noise_schedule = DDPMScheduler.from_config(self.scheduler_config)  # add_noise of the training schedule
        self.dsg: DSGTrajectory | None = None  # previous clip's stored trajectory
        self.context: torch.Tensor | None = None  # extend "context": previous clip's last M final latents
        self.anchor: torch.Tensor | None = None  # extend "context": the first clip's latent channel means

    def continue_from(self, latents: torch.Tensor) -> None:
        """Make the next `denoise` of a later clip (extend "context") continue `latents` (1, 4, f >= M, h, w), final
        latents at U-Net scale, as if they were the clip before: their last M frames are given, and the anchor keeps
        their channel means. For continuing frames that were not sampled here (encoded from a video)."""
        m = self.video.vidrd.overlap
        if self.video.extend != "context":
            raise ValueError(f"continue_from needs extend='context', not {self.video.extend!r}")
        if latents.ndim != 5 or latents.shape[:2] != (1, 4) or latents.shape[2] < m \
                or tuple(latents.shape[3:]) != self.latent_shape[3:]:
            raise ValueError(f"latents must be (1, 4, >= {m}, {self.latent_shape[3]}, {self.latent_shape[4]}), "
                             f"got {tuple(latents.shape)}")
        latents = latents.to(device=self.device, dtype=torch.float32)
        self.anchor = latents.mean(dim=(2, 3, 4), keepdim=True)  # (1, 4, 1, 1, 1)
        self.context = latents[:, :, -m:].clone()  # (1, 4, M, h, w)

    def initial_noise(self, clip: int, prev_noise: torch.Tensor | None, generator) -> torch.Tensor:
        """Unit-variance noise (1, 4, N, h, w) a clip starts from."""
        s, v = self.sampling, self.video
        if clip == 0 or v.extend in ("independent", "context"):
            return video_noise(self.latent_shape, s.noise_prior, s.noise_alpha, generator=generator,
                               device=self.device, dtype=torch.float32)  # PYoCo eqs. (3)/(4)
        return next_clip_noise(prev_noise, v.vidrd.overlap, v.vidrd.pns_alpha, generator,
                               v.vidrd.order)  # VidRD FNR + PNS

    def denoise(self, clip: int, noise: torch.Tensor, text, generator) -> torch.Tensor:
        """One clip from its initial noise to final latents (1, 4, N, h, w), with DSG from the previous clip, or
        (extend "context") with its first M frames held to the previous clip's last M final latents at t = 0.

        `text`: embeddings (2|1, seq, dim), or a function of the fraction of steps done -> embeddings.
        """
        s, v = self.sampling, self.video
        scheduler = make_scheduler(s.scheduler, self.scheduler_config)
        scheduler.set_timesteps(s.steps, device=self.device)
        timesteps = scheduler.timesteps
        vidrd = v.extend == "vidrd" and clip + 1 < v.num_clips
        holds = dsg_hold_steps(len(timesteps), v.vidrd.overlap, v.vidrd.dsg_beta, v.vidrd.order)
        record = DSGTrajectory(v.clip_frames, holds, v.vidrd.order) if vidrd else None
        step_kwargs = {"generator": generator} if "generator" in _step_params(scheduler) else {}
        cfg = s.guidance > 1
        context = self.context if v.extend == "context" and clip > 0 else None  # (1, 4, M, h, w) or None
        m = 0 if context is None else context.shape[2]
        given = context
        if context is not None and v.context_noise:  # noise augmentation, as trained (train --context-noise)
            eps = torch.randn(context.shape, generator=generator).to(context)  # (1, 4, M, h, w)
            given = self.noise_schedule.add_noise(context, eps, torch.tensor([v.context_noise]))  # (1, 4, M, h, w)
        latents = noise * scheduler.init_noise_sigma  # (1, 4, N, h, w), float32
        if context is not None and v.context_init == "last-frame":  # the new frames start from the last given
            # frame diffused to the first timestep (the forward process, in the scheduler's own parametrisation)
            last = context[:, :, -1:].expand_as(noise)  # (1, 4, N, h, w)
            latents = scheduler.add_noise(last, noise, timesteps[:1])  # (1, 4, N, h, w)
        # history guidance (after Song et al. 2025, arXiv 2502.06764, "vanilla"): the unconditional row goes without
        # the given frames too; they follow the previous clip's frames' forward process with one noise draw per clip
        # (at the step's timestep, not full noise: the clips trained without context had every frame at one t)
        free = context is not None and cfg and v.context_guidance
        # (drawn for "dropped" too, which never uses it, so that both forms draw the same random stream)
        history_eps = torch.randn(context.shape, generator=generator).to(context) if free else None  # (1, 4, M, h, w)
        split = free and v.history_scale is not None  # three rows: [no prompt, no history], [prompt, no history],
        # [prompt, history] (--history-scale)
        n_rows = 3 if split else 2 if cfg else 1
        n_free = (2 if split else 1) if free else 0  # the first rows: without the given frames
        split_text: tuple = (None, None)  # (2, seq, dim) embedding -> its (3, seq, dim) rows
        causal = context is not None and self.model.config.context_causal  # block-causal given frames
        # (ldm_video.causal): they attend only to each other
        cached, cache, cache_text = causal and self.cache_context, None, None
        rows = slice(n_free, None)  # the rows whose first M frames are given
        given_mask = None
        if causal and not cached:  # the reference: every frame at every step, the given ones masked
            given_mask = torch.zeros(n_rows, noise.shape[2], dtype=torch.bool, device=self.device)
            given_mask[rows, :m] = True  # (3|2|1, N)
        for k, t in enumerate(tqdm(timesteps, desc=f"clip {clip + 1} steps", leave=False, disable=not self.progress)):
            if self.dsg is not None:
                latents = self.dsg.apply(k, latents)  # VidRD DSG: z[c+1, j, k] = z[c, source(j), k]
            if record is not None:
                record.record(k, latents)  # kept for the next clip (after this step's replacement)
            # the rows without the given frames run the new frames alone (history_free "dropped"), while the given
            # frames are noisier than trained; after that every row keeps them, as with "noised"
            drop = free and v.history_free == "dropped" and t > v.context_noise
            x = torch.cat([latents] * n_rows)  # (3|2|1, 4, N, h, w)
            x = scheduler.scale_model_input(x, t).to(self.dtype)
            t_model = t
            if context is not None:  # the given frames: clean, at timestep 0 (as trained, train --context-frames)
                x = x.clone()
                x[:, :, :m] = given.to(self.dtype)
                t_model = torch.as_tensor(t, device=self.device).expand(x.shape[0], x.shape[2]).clone()  # (3|2|1, N)
                t_model[:, :m] = v.context_noise  # keeps t's dtype: Euler's linspace timesteps are fractional
                # the unconditional row: the given frames at this step's timestep, to be denoised; once that is
                # no noisier than their own (--context-noise), both rows keep them as given
                if free and t > v.context_noise and not drop:
                    step_t = torch.as_tensor(t).round().long().reshape(1).cpu()  # (1,): the DDPM table's index
                    x[:n_free, :, :m] = self.noise_schedule.add_noise(context, history_eps, step_t)[0].to(self.dtype)
                    t_model[:n_free, :m] = t  # (M,)
            emb = text(k / len(timesteps)) if callable(text) else text  # prompt editing: by denoising progress
            if split:  # rows [negative, prompt, prompt], built once per embedding (the given frames' cache keys on it)
                if emb is not split_text[0]:
                    split_text = (emb, torch.cat([emb[:1], emb[1:], emb[1:]]))  # (3, seq, dim)
                emb = split_text[1]
            if cached and (cache is None or emb is not cache_text):  # the given frames run once per clip (again
                # only if the prompt changes), then only the new frames
                cache, cache_text = self.model.cache_context(x[rows, :, :m], t_model[rows, :m], emb[rows]), emb
            pred = self._predict(x, t_model, emb, n_free if free else 0, m, drop, cache if cached else None,
                                 given_mask)  # (3|2|1, 4, N, h, w)
            if split:  # the prompt and the given frames weighed apart (composite guidance, after Song et al. 2025)
                uncond, prompt_only, cond = pred.chunk(3)
                pred = uncond + s.guidance * (prompt_only - uncond) + v.history_scale * (cond - prompt_only)
            elif cfg:
                uncond, cond = pred.chunk(2)
                pred = uncond + s.guidance * (cond - uncond)  # classifier-free guidance
            latents = scheduler.step(pred, t, latents, **step_kwargs).prev_sample  # (1, 4, N, h, w)
        if context is not None:
            latents[:, :, :m] = context  # exactly the previous clip's frames (dropped from the output: seam_drop M)
            if v.context_anchor:  # every new frame keeps the first clip's latent channel means (its colours)
                latents[:, :, m:] += self.anchor - latents[:, :, m:].mean(dim=(3, 4), keepdim=True)
        if v.extend == "context" and clip == 0:
            self.anchor = latents.mean(dim=(2, 3, 4), keepdim=True)  # (1, 4, 1, 1, 1)
        if v.extend == "context":
            self.context = latents[:, :, latents.shape[2] - v.vidrd.overlap:].clone()  # (1, 4, M, h, w)
        self.dsg = record
        return latents

    def _predict(self, x: torch.Tensor, t_model: torch.Tensor, emb: torch.Tensor, n_free: int, m: int, drop: bool,
                 cache: ContextCache | None, given_mask: torch.Tensor | None) -> torch.Tensor:
        """The U-Net's prediction (rows, 4, N, h, w) for every row of x (rows, 4, N, h, w), in one call.

        The first `n_free` rows (history guidance's rows without the given frames) run as a clip of their own where
        their frames differ from the others': the N - M new frames alone (`drop`), or all N unmasked beside rows
        that run only their new frames against `cache`. The other rows run all N frames (block-causal under
        `given_mask`) or, with `cache`, the new ones. Several clips share one call (`VideoUNet.forward_clips`)."""
        if n_free and not (drop or cache is not None):
            n_free = 0  # the rows without the given frames hold them noised: the same frames, one clip
        if not n_free and cache is None:  # every row runs all N frames
            masked = {} if given_mask is None else {"given": given_mask}  # (rows, N): block-causal
            return self.model(x, t_model, emb, **masked).sample.float()  # (rows, 4, N, h, w)
        new_only = m if cache is not None else 0  # rows against the cache run their new frames alone
        rest = slice(n_free, None)
        mask = None if given_mask is None else given_mask[rest]  # (rows - n_free, N): block-causal, uncached
        clip = VideoClip(x[rest, :, new_only:], t_model[rest, new_only:], emb[rest], given=mask, cache=cache)
        if not n_free:  # the new frames against the cache, every row
            preds = [self.model(clip.sample, clip.timestep, clip.encoder_hidden_states, cache=cache).sample]
        else:
            skip = m if drop else 0
            free = VideoClip(x[:n_free, :, skip:], t_model[:n_free, skip:], emb[:n_free])
            preds = self.model.forward_clips([free, clip])
        return torch.cat([_with_given_places(p.float(), x.shape[2] - p.shape[2]) for p in preds])  # (rows,4,N,h,w)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(1, 4, f, h, w) latents -> (latent chunk, frames (chunk, 3, H, W) in [-1, 1]), chunk by chunk."""
        for start in range(0, latents.shape[2], self.video.decode_chunk):
            z = latents[:, :, start:start + self.video.decode_chunk]  # (1, 4, chunk, h, w)
            video = self._decode(z)  # (1, 3, F_chunk, H, W): true num_frames; causal VAE: cache carried on
            yield z, rearrange(video, "1 c f h w -> f c h w")  # (F_chunk, 3, H, W)

    @torch.no_grad()
    def __call__(self, text: torch.Tensor | Callable[[int], torch.Tensor]) -> Iterator[VideoChunk]:
        """Yield the video's frames chunk by chunk, exactly `num_frames` in all.

        Args:
            text: (2, seq, dim) [negative, prompt] embeddings when guidance > 1, else (1, seq, dim); or a
                function clip index -> such embeddings, or -> a function of the fraction of the clip's steps
                done -> embeddings (prompt travel, prompt editing).
        """
        text_for = text if callable(text) else (lambda clip: text)
        generator = torch.Generator("cpu").manual_seed(self.sampling.seed)
        noise = None
        self.dsg, self.context = None, None
        self._decode = self.vae.stream_decoder()  # one per video: the causal VAE's cache spans the clips
        clips = tqdm(range(self.video.num_clips), desc="clips", disable=not self.progress)
        for clip in clips:
            noise = self.initial_noise(clip, noise, generator)  # (1, 4, N, h, w)
            latents = self.denoise(clip, noise, text_for(clip), generator)  # (1, 4, N, h, w)
            start, end = self.video.kept_frames(clip)
            for z, frames in self.decode(latents[:, :, start:end]):
                yield VideoChunk(clip=clip, latents=z, frames=frames)
            del latents


def _with_given_places(pred: torch.Tensor, m: int) -> torch.Tensor:
    """A prediction for the new frames (rows, 4, N - M, h, w) -> (rows, 4, N, h, w), zero at the M given frames' places:
    never used, since the given frames are put back after the denoising loop."""
    if m == 0:
        return pred
    return torch.cat([torch.zeros_like(pred[:, :, :1]).expand(-1, -1, m, -1, -1), pred], dim=2)


def _step_params(scheduler) -> set[str]:
    return set(inspect.signature(scheduler.step).parameters)
