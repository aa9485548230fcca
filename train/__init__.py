"""Training the temporal layers: the data path reads top to bottom through these modules.

- `data` (with `captions`, `decode`, `transforms`): a folder of videos / images -> clips `(3, f, H, W)`.
- `encode`, `cache`: clips -> VAE latents and text embeddings (optionally cached on disk by `prepare`).
- `objective`: PYoCo prior noise and the epsilon / v target of the base model.
- `settings`, `parts`, `config`: the config tree of every training command (one frozen part per idea, the flags
  and flat YAML made from it); `setup`, `trainer`, `state`, `optim`, `validate`: `ldm-video train` on accelerate,
  with resumable checkpoints.
- `plan`: peak GPU memory of a configuration on fake tensors (`ldm-video plan`).
- `synthetic`, `writer`: small synthetic clips for tests and demos; mp4 writing.
"""
