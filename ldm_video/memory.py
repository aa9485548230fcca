"""Peak memory of CPU tensors: that long-video generation runs in constant memory (tests), and what one training
step holds at its peak (`ldm-video plan`, on fake tensors, and `benchmarks/train_step.py`).

torch's CPU allocator keeps no statistics (unlike `torch.cuda.max_memory_allocated`), so this counts
directly: a dispatch mode sees every tensor that a torch operator returns while it is active, records its
storage's size once, and takes it off again when the storage is freed (a weakref finalizer; torch keeps a
storage's Python object alive exactly as long as the storage). What it covers: every CPU storage created by
torch operators inside the `with` block (activations, latents, noise, decoded frames, stored DSG latents).
What it does not: tensors made before the block (model weights), and memory outside torch (numpy arrays
made with `.numpy()` share the tensor's storage and are covered; PyAV's and x264's own buffers are not).
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class TensorMemoryTracker(TorchDispatchMode):
    """`with TensorMemoryTracker() as m: ...` then `m.peak` (bytes of live CPU storages at their maximum)."""

    def __init__(self) -> None:
        super().__init__()
        self.current = 0  # bytes of tracked storages alive now
        self.peak = 0  # the maximum of `current`
        self._alive: set[int] = set()  # id() of tracked storages

    def _freed(self, key: int, nbytes: int) -> None:
        self._alive.discard(key)
        self.current -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                storage = t.untyped_storage()
                key = id(storage)
                if key not in self._alive:
                    nbytes = storage.nbytes()
                    self._alive.add(key)
                    self.current += nbytes
                    weakref.finalize(storage, self._freed, key, nbytes)
        self.peak = max(self.peak, self.current)
        return out
