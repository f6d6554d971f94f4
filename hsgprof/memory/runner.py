"""Running real steps (on CPU or CUDA) with the same precisions and optimizers the estimate models.

:class:`RealStep` is what the CUDA measurements, the max-batch search and the latency timings
execute: the target's own inference call or training loss, under autocast for the AMP
precisions, with a ``GradScaler`` for fp16 AMP and the optimizer PyTorch would pick by default
(``foreach`` on CUDA).

The optimizer state is created when the step is built (one step on zero gradients), so it is
in place from the first measured step on, as after warm-up, whatever the gradient scaler does:
fp16 AMP skips steps whose gradients overflow, and a skipped step creates no state. The scaler
starts at a scale of 2^10 rather than 2^16 so it settles in a few steps; memory does not depend
on the scale's value.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch

from hsgprof.memory.steps import check_mode, check_optimizer, get_precision, make_optimizer
from hsgprof.targets import Target, load_target


class RealStep:
    """One model on a real device, ready to run inference calls or training steps."""

    def __init__(self, target: str | Target, mode: str = "inference", precision: str = "fp32",
                 optimizer: str | None = "adamw", device: str | torch.device = "cpu",
                 seed: int = 0, **overrides: Any) -> None:
        check_mode(mode)
        self.prec = get_precision(precision)
        self.mode, self.device = mode, torch.device(device)
        torch.manual_seed(seed)
        self.target = target if isinstance(target, Target) else load_target(target, device=self.device, **overrides)
        self.model = self.target.model
        if self.prec.param_dtype != torch.float32:
            self.model.to(self.prec.param_dtype)
        self.model.train(mode == "train")
        self.opt = None
        self.scaler = None
        if mode == "train":
            params = [p for p in self.model.parameters() if p.requires_grad]
            self.opt = make_optimizer(check_optimizer(optimizer or ""), params)
            for p in params:
                p.grad = torch.zeros_like(p)
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
            if self.prec.grad_scaler:
                self.scaler = torch.amp.GradScaler(self.device.type, init_scale=2.0 ** 10)

    @property
    def input_dtype(self) -> torch.dtype:
        return self.prec.param_dtype

    def make_input(self, shape: tuple[int, int, int, int], seed: int = 0) -> torch.Tensor:
        g = torch.Generator(device=self.device).manual_seed(seed)
        return torch.rand(shape, generator=g, device=self.device, dtype=torch.float32).to(self.input_dtype)

    def autocast(self) -> Any:
        if self.prec.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.prec.autocast_dtype)

    def infer(self, x: torch.Tensor) -> Any:
        """The target's inference call (HSG-Det: the raw network, no post-processing)."""
        with torch.no_grad(), self.autocast():
            return self.target.forward(self.model, x)

    def forward_loss(self, x: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.target.loss(self.model, x)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def optimizer_step(self) -> bool:
        """Step and set gradients to None; False when the gradient scaler skipped the step."""
        stepped = True
        if self.scaler is not None:
            before = self.scaler.get_scale()
            self.scaler.step(self.opt)
            self.scaler.update()
            stepped = self.scaler.get_scale() >= before
        else:
            self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return stepped

    def run(self, x: torch.Tensor) -> bool:
        """One full step: an inference call, or forward + backward + optimizer step."""
        if self.mode == "inference":
            out = self.infer(x)
            del out
            return True
        loss = self.forward_loss(x)
        self.backward(loss)
        del loss
        return self.optimizer_step()

    def reset_grads(self) -> None:
        if self.opt is not None:
            self.opt.zero_grad(set_to_none=True)
        for p in self.model.parameters():
            p.grad = None

    def recover(self) -> None:
        """Make the step usable again after a step failed half-way (e.g. out of memory).

        Gradients are dropped, and the gradient scaler is replaced (a scaler interrupted between
        ``unscale_`` and ``update`` refuses to step again), keeping its current scale.
        """
        self.reset_grads()
        if self.scaler is not None:
            self.scaler = torch.amp.GradScaler(self.device.type, init_scale=self.scaler.get_scale())
