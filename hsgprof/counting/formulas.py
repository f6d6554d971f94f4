"""Closed-form FLOP formulas: a registry of aten op -> shape-only function (the referee's rules).

Each formula takes the op's arguments with every tensor replaced by its shape (``torch.Size``)
and the output shape(s) as ``out``, and returns ``(macs, flops)``:

* ``macs``: multiply-accumulates of GEMM work (convolution, matrix products, the two products of
  attention). GEMM FLOPs = 2 × MACs (DESIGN.md).
* ``flops``: every other floating-point operation, under the per-element convention written in the
  formula's one-line docstring (bias adds, elementwise ops, norms, softmax, interpolation, pooling,
  reductions, attention scaling and masking).

Adding an op is one decorated function (``@formula(aten.X, family=...)``); the counting machinery
never changes. Ops that only move, view, create or select data are registered as zero-cost
(:data:`ZERO_OPS`), so an op with no rule at all is visible as *unknown*, never as a silent zero.

Conventions that keep the count independent of the execution path (train/eval, grad mode, fused
kernels vs their decomposition) are stated where they matter: dropout costs 0 (its random mask and
mask multiply are regularisation, not inference work; a random tensor is a mask only when it is a
bernoulli draw or a binarised uniform draw, so random noise added to data is priced); batch norm
costs its affine form (2/element) whether statistics come from the batch or the running buffers;
fused attention kernels (``_scaled_dot_product_*``, ``_native_multi_head_attention``,
``_transformer_encoder_layer_fwd``) cost exactly what their reference decomposition costs under
these rules.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import torch

aten = torch.ops.aten

Cost = tuple[int, int]          # (GEMM MACs, non-GEMM FLOPs)

# Op families: the vocabulary every table and every backend comparison uses.
CONV, MATMUL, ATTENTION = "conv", "matmul", "attention"
NORM, SOFTMAX, ACTIVATION, ELEMENTWISE = "norm", "softmax", "activation", "elementwise"
INTERPOLATE, POOL, REDUCTION, SELECTION = "interpolate", "pool", "reduction", "selection"
DROPOUT, MEMORY, BACKWARD = "dropout", "memory", "backward"
GEMM_FAMILIES = (CONV, MATMUL, ATTENTION)
FAMILIES = (CONV, MATMUL, ATTENTION, NORM, SOFTMAX, ACTIVATION, ELEMENTWISE, INTERPOLATE, POOL,
            REDUCTION, SELECTION, DROPOUT, MEMORY, BACKWARD)


@dataclass(frozen=True)
class Formula:
    """One registered rule: the shape-only function, its op family and its convention."""

    fn: Callable[..., Cost]
    family: str
    convention: str


FORMULAS: dict[Any, Formula] = {}      # OpOverloadPacket -> Formula


def _packet(name: str):
    """``aten.<name>`` or None when this torch build lacks the op (formulas list ops of many versions)."""
    try:
        packet = getattr(aten, name)
    except (AttributeError, RuntimeError):
        return None
    return packet if isinstance(packet, torch._ops.OpOverloadPacket) else None


def _target(t: Any, if_present: bool) -> Any:
    """The op packet a registration target names; None for a name this build lacks when ``if_present``."""
    if isinstance(t, torch._ops.OpOverloadPacket):
        return t
    if isinstance(t, torch._ops.OpOverload):
        return t.overloadpacket                   # rules are per packet: every overload of the op
    if isinstance(t, str):
        packet = _packet(t.removeprefix("aten."))
        if packet is not None or if_present:
            return packet
        raise ValueError(f"formula(): {t!r} is not an aten op in torch {torch.__version__}; give an aten op "
                         "name (e.g. 'logaddexp') or a torch.ops.aten packet (e.g. torch.ops.aten.logaddexp)")
    raise ValueError(f"formula(): cannot register a rule for {t!r} ({type(t).__name__}); give an aten op "
                     "name (e.g. 'logaddexp') or a torch.ops.aten packet (e.g. torch.ops.aten.logaddexp)")


def formula(*targets: Any, family: str,
            if_present: bool = False) -> Callable[[Callable[..., Cost]], Callable[..., Cost]]:
    """Register ``fn`` as the rule for each target: a ``torch.ops.aten`` packet or overload, or an op name.

    Raises ``ValueError`` (one line, naming the bad value) for a name that is no aten op in this torch
    build, a target of another type, no target, or a family outside :data:`FAMILIES`; and
    ``RuntimeError`` for an op that already has a rule. ``if_present=True`` skips names this build
    lacks instead (the built-in rules list ops of several torch versions, and in-place variants).
    """
    if family not in FAMILIES:
        raise ValueError(f"formula(): family {family!r} is not accepted; choose one of {', '.join(FAMILIES)}")
    if not targets:
        raise ValueError("formula(): no op given; give aten op names or torch.ops.aten packets")
    packets = [p for p in (_target(t, if_present) for t in targets) if p is not None]

    def register(fn: Callable[..., Cost]) -> Callable[..., Cost]:
        doc = (fn.__doc__ or "").strip().splitlines()
        rule = Formula(fn, family, doc[0] if doc else "")
        for packet in packets:
            if packet in FORMULAS:
                raise RuntimeError(f"duplicate formula for {packet}")
            FORMULAS[packet] = rule
        return fn

    return register


# The built-in rules: they name ops of several torch versions, so a name this build lacks is skipped.
_rule = functools.partial(formula, if_present=True)


def numel(shape: Sequence[int] | None) -> int:
    """Number of elements of a shape (None -> 0)."""
    return 0 if shape is None else math.prod(shape)


def _first(out: Any) -> Sequence[int]:
    """The first tensor shape in an op's output (ops returning tuples put the result first)."""
    while isinstance(out, (tuple, list)) and out and not isinstance(out, torch.Size):
        out = out[0]
    return out if isinstance(out, torch.Size) else torch.Size(())


# ---------------------------------------------------------------------------------------- GEMM
@_rule(aten.mm, family=MATMUL)
def mm(a, b, *args, out=None, **kwargs) -> Cost:
    """mm: M·N·K MACs."""
    return a[0] * b[1] * a[1], 0


@_rule(aten.addmm, family=MATMUL)
def addmm(bias, a, b, *args, out=None, **kwargs) -> Cost:
    """addmm: M·N·K MACs + 1 FLOP per output element for the bias add."""
    return a[0] * b[1] * a[1], a[0] * b[1]


@_rule("_addmm_activation", family=MATMUL)
def addmm_activation(bias, a, b, *args, out=None, **kwargs) -> Cost:
    """addmm + activation: M·N·K MACs + 2 FLOPs per output element (bias add, activation)."""
    return a[0] * b[1] * a[1], 2 * a[0] * b[1]


@_rule(aten.bmm, family=MATMUL)
def bmm(a, b, *args, out=None, **kwargs) -> Cost:
    """bmm: B·M·N·K MACs."""
    return a[0] * a[1] * b[2] * a[2], 0


@_rule(aten.baddbmm, family=MATMUL)
def baddbmm(bias, a, b, *args, out=None, **kwargs) -> Cost:
    """baddbmm: B·M·N·K MACs + 1 FLOP per output element for the add."""
    return a[0] * a[1] * b[2] * a[2], a[0] * a[1] * b[2]


@_rule(aten.addbmm, family=MATMUL)
def addbmm(bias, a, b, *args, out=None, **kwargs) -> Cost:
    """addbmm: B·M·N·K MACs + the batch-sum and bias adds, 1 FLOP per summand element."""
    return a[0] * a[1] * b[2] * a[2], a[0] * a[1] * b[2]


@_rule(aten.mv, family=MATMUL)
def mv(a, v, *args, out=None, **kwargs) -> Cost:
    """mv: M·N MACs."""
    return a[0] * a[1], 0


@_rule(aten.addmv, family=MATMUL)
def addmv(bias, a, v, *args, out=None, **kwargs) -> Cost:
    """addmv: M·N MACs + M bias adds."""
    return a[0] * a[1], a[0]


@_rule(aten.dot, aten.vdot, family=MATMUL)
def dot(a, b, *args, out=None, **kwargs) -> Cost:
    """dot: N MACs."""
    return a[0], 0


def conv_macs(x: Sequence[int], w: Sequence[int], out: Sequence[int], transposed: bool) -> int:
    """Convolution MACs: every output (input, if transposed) element × weight volume per output channel."""
    return numel(x if transposed else out) * numel(w[1:])


@_rule(aten.convolution, aten._convolution, "convolution_overrideable", family=CONV)
def convolution(x, w, bias=None, stride=None, padding=None, dilation=None, transposed=False, *args,
                out=None, **kwargs) -> Cost:
    """conv: N·Cout·out-pixels·(Cin/groups)·kernel MACs (transposed: per input pixel) + 1 FLOP per output element for the bias."""
    if not isinstance(transposed, bool):        # ops whose schema has no `transposed` argument
        transposed = False
    o = _first(out)
    bias_flops = numel(o) if isinstance(bias, torch.Size) else 0
    return conv_macs(x, w, o, transposed), bias_flops


@_rule("cudnn_convolution", "mkldnn_convolution", family=CONV)
def convolution_nobias(x, w, *args, out=None, **kwargs) -> Cost:
    """conv kernel without a bias argument: N·Cout·out-pixels·(Cin/groups)·kernel MACs."""
    return conv_macs(x, w, _first(out), False), 0


@_rule("_slow_conv2d_forward", family=CONV)
def slow_conv2d(x, w, kernel_size, bias=None, *args, out=None, **kwargs) -> Cost:
    """CPU conv kernel: N·Cout·out-pixels·(Cin/groups)·kernel MACs + 1 FLOP per output element for the bias."""
    o = _first(out)
    return conv_macs(x, w, o, False), numel(o) if isinstance(bias, torch.Size) else 0


@_rule(aten.convolution_backward, family=CONV)
def convolution_backward(grad_out, x, w, bias_sizes, stride, padding, dilation, transposed, output_padding,
                         groups, output_mask, *args, out=None, **kwargs) -> Cost:
    """conv backward: forward MACs for grad_input and again for grad_weight (as requested) + 1 FLOP per grad_out element for grad_bias."""
    fwd = conv_macs(x, w, grad_out, transposed)
    macs = fwd * (int(bool(output_mask[0])) + int(bool(output_mask[1])))
    return macs, numel(grad_out) if output_mask[2] else 0


# ----------------------------------------------------------------------------------- attention
def sdpa_cost(q: Sequence[int], k: Sequence[int], v: Sequence[int], masked: bool) -> Cost:
    """Scaled dot-product attention as its reference (math) implementation computes it.

    MACs: QKᵀ (BH·Lq·Lk·E) + PV (BH·Lq·Lk·Ev), BH = batch × query heads (GQA broadcasts keys).
    FLOPs: scaling q and k by √scale (BH·Lq·E + BH·Lk·E), the mask add when a mask (or the causal
    mask) is applied (BH·Lq·Lk), softmax (3 per score); dropout 0.
    """
    *lead, lq, e = q
    lk, ev = k[-2], v[-1]
    bh = math.prod(lead)
    scores = bh * lq * lk
    macs = scores * e + scores * ev
    flops = bh * lq * e + bh * lk * e + 3 * scores + (scores if masked else 0)
    return macs, flops


def _masked(mask: Any, is_causal: Any) -> bool:
    return isinstance(mask, torch.Size) or bool(is_causal)


@_rule("_scaled_dot_product_flash_attention_for_cpu", family=ATTENTION)
def sdpa_flash_cpu(q, k, v, dropout_p=0.0, is_causal=False, *args, attn_mask=None, out=None, **kwargs) -> Cost:
    """CPU flash SDPA: the reference attention cost (see sdpa_cost)."""
    return sdpa_cost(q, k, v, _masked(attn_mask, is_causal))


def unpad_head_dim(q: Sequence[int], k: Sequence[int], v: Sequence[int], scale: Any) -> tuple[torch.Size, ...]:
    """Undo the flash kernel's head-dim padding: on CUDA, SDPA pads q, k, v to a multiple of 8 before calling
    ``_scaled_dot_product_flash_attention`` and passes ``scale = 1/√(original head dim)``; when the scale names a
    head dim just below the padded one, that is the dim the attention is priced at (the padding is zeros)."""
    e = q[-1]
    if scale is None or e % 8 or not isinstance(scale, (int, float)) or scale <= 0:
        return torch.Size(q), torch.Size(k), torch.Size(v)
    est = 1.0 / float(scale) ** 2
    d = round(est)
    if not (e - 8 < d < e and abs(est - d) <= 1e-3 * d):
        return torch.Size(q), torch.Size(k), torch.Size(v)
    return (torch.Size((*q[:-1], d)), torch.Size((*k[:-1], d)),
            torch.Size((*v[:-1], d)) if v[-1] == e else torch.Size(v))


@_rule("_scaled_dot_product_flash_attention", family=ATTENTION)
def sdpa_flash(q, k, v, dropout_p=0.0, is_causal=False, return_debug_mask=False, *args, scale=None, out=None,
               **kwargs) -> Cost:
    """CUDA flash SDPA: the reference attention cost (see sdpa_cost) at the unpadded head dim (see unpad_head_dim)."""
    return sdpa_cost(*unpad_head_dim(q, k, v, scale), bool(is_causal))


@_rule("_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention", family=ATTENTION)
def sdpa_efficient(q, k, v, attn_bias=None, compute_log_sumexp=False, dropout_p=0.0, is_causal=False, *args,
                   out=None, **kwargs) -> Cost:
    """Memory-efficient / cuDNN SDPA: the reference attention cost (see sdpa_cost)."""
    return sdpa_cost(q, k, v, _masked(attn_bias, is_causal))


@_rule("_scaled_dot_product_fused_attention_overrideable", family=ATTENTION)
def sdpa_overrideable(q, k, v, attn_bias=None, dropout_p=0.0, is_causal=False, *args, out=None, **kwargs) -> Cost:
    """Backend-overridable fused SDPA: the reference attention cost (see sdpa_cost)."""
    return sdpa_cost(q, k, v, _masked(attn_bias, is_causal))


def _bhle(shape: Sequence[int]) -> torch.Size:
    """(B, L, H, E) -> (B, H, L, E): the layout flash/efficient kernels take."""
    b, l, h, e = shape
    return torch.Size((b, h, l, e))


@_rule("_flash_attention_forward", family=ATTENTION)
def flash_forward(q, k, v, cum_seq_q=None, cum_seq_k=None, max_q=0, max_k=0, dropout_p=0.0, is_causal=False,
                  *args, out=None, **kwargs) -> Cost:
    """Flash kernel (B, L, H, E layout): the reference attention cost (see sdpa_cost)."""
    return sdpa_cost(_bhle(q), _bhle(k), _bhle(v), bool(is_causal))


@_rule("_efficient_attention_forward", family=ATTENTION)
def efficient_forward(q, k, v, bias=None, *args, out=None, **kwargs) -> Cost:
    """Efficient kernel (B, L, H, E layout): the reference attention cost (see sdpa_cost)."""
    return sdpa_cost(_bhle(q), _bhle(k), _bhle(v), isinstance(bias, torch.Size))


def sdpa_backward_cost(q: Sequence[int], k: Sequence[int], v: Sequence[int]) -> Cost:
    """Fused SDPA backward: 5 score-sized products (recompute QKᵀ, dP, dV, dQ, dK; as FCM) + 3 FLOPs per score (softmax backward)."""
    *lead, lq, e = q
    lk, ev = k[-2], v[-1]
    scores = math.prod(lead) * lq * lk
    return scores * (3 * e + 2 * ev), 3 * scores


@_rule("_scaled_dot_product_flash_attention_for_cpu_backward", "_scaled_dot_product_efficient_attention_backward",
         "_scaled_dot_product_cudnn_attention_backward", "_scaled_dot_product_fused_attention_overrideable_backward",
         family=ATTENTION)
def sdpa_backward(grad_out, q, k, v, *args, out=None, **kwargs) -> Cost:
    """Fused SDPA backward: see sdpa_backward_cost."""
    return sdpa_backward_cost(q, k, v)


@_rule("_scaled_dot_product_flash_attention_backward", family=ATTENTION)
def sdpa_flash_backward(grad_out, q, k, v, *args, scale=None, out=None, **kwargs) -> Cost:
    """CUDA flash SDPA backward: see sdpa_backward_cost, at the unpadded head dim (see unpad_head_dim)."""
    return sdpa_backward_cost(*unpad_head_dim(q, k, v, scale))


@_rule("_flash_attention_backward", "_efficient_attention_backward", family=ATTENTION)
def flash_backward(grad_out, q, k, v, *args, out=None, **kwargs) -> Cost:
    """Flash/efficient kernel backward (B, L, H, E layout): see sdpa_backward_cost."""
    return sdpa_backward_cost(_bhle(q), _bhle(k), _bhle(v))


def mha_cost(q: Sequence[int], k: Sequence[int], embed_dim: int, heads: int, qkv_bias: bool, proj_bias: bool,
             masked: bool, need_weights: bool, average: bool) -> Cost:
    """Multi-head attention as ``F.multi_head_attention_forward`` computes it (self or cross).

    Projections: (Lq + 2·Lk)·E² MACs in, Lq·E² out, plus bias adds. Core: with ``need_weights``
    the explicit path (q scaled: B·Lq·E; QKᵀ; mask add; softmax; PV; head-average of the weights:
    1 per weight element), else scaled dot-product attention (sdpa_cost).
    """
    b = math.prod(q[:-2]) if len(q) >= 3 else 1
    lq, lk, e = q[-2], k[-2], embed_dim
    d = e // heads
    macs = b * (lq + 2 * lk) * e * e + b * lq * e * e
    flops = (b * (lq + 2 * lk) * e if qkv_bias else 0) + (b * lq * e if proj_bias else 0)
    qh, kh = torch.Size((b, heads, lq, d)), torch.Size((b, heads, lk, d))
    if need_weights:
        scores = b * heads * lq * lk
        macs += scores * d * 2
        flops += b * lq * e + 3 * scores + (scores if masked else 0) + (scores if average else 0)
    else:
        core = sdpa_cost(qh, kh, kh, masked)
        macs, flops = macs + core[0], flops + core[1]
    return macs, flops


def _batch_first(x: Sequence[int]) -> Sequence[int]:
    return x if len(x) >= 3 else torch.Size((1, *x))


@_rule("_native_multi_head_attention", family=ATTENTION)
def native_mha(query, key, value, embed_dim, num_head, qkv_weight, qkv_bias, proj_weight, proj_bias, mask=None,
               need_weights=True, average_attn_weights=True, mask_type=None, *args, out=None, **kwargs) -> Cost:
    """nn.MultiheadAttention fast path: the same cost as its slow path (see mha_cost)."""
    return mha_cost(_batch_first(query), _batch_first(key), embed_dim, num_head, isinstance(qkv_bias, torch.Size),
                    isinstance(proj_bias, torch.Size), isinstance(mask, torch.Size), bool(need_weights),
                    bool(average_attn_weights))


def layer_norm_cost(n: int, weight: bool, bias: bool) -> int:
    """Layer/group/instance norm: 4 FLOPs per element (mean, centre, variance, scale) + 1 each for weight and bias."""
    return n * (4 + int(weight) + int(bias))


@_rule("_transformer_encoder_layer_fwd", family=ATTENTION)
def transformer_encoder_layer(src, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias, use_gelu,
                              norm_first, eps, norm_weight_1, norm_bias_1, norm_weight_2, norm_bias_2, ffn_weight_1,
                              ffn_bias_1, ffn_weight_2, ffn_bias_2, mask=None, mask_type=None, *args, out=None,
                              **kwargs) -> Cost:
    """nn.TransformerEncoderLayer fast path: self-attention (mha_cost) + 2 residual adds + 2 layer norms + FFN (2 linears, bias adds, activation)."""
    s = _batch_first(src)
    tokens, e, f = numel(s[:-1]), embed_dim, ffn_weight_1[0]
    macs, flops = mha_cost(s, s, e, num_heads, isinstance(qkv_bias, torch.Size), isinstance(proj_bias, torch.Size),
                           isinstance(mask, torch.Size), False, False)
    macs += tokens * e * f * 2
    flops += tokens * f * (int(isinstance(ffn_bias_1, torch.Size)) + 1) \
        + tokens * e * int(isinstance(ffn_bias_2, torch.Size))
    flops += 2 * tokens * e                                                       # residual adds
    flops += layer_norm_cost(tokens * e, isinstance(norm_weight_1, torch.Size), isinstance(norm_bias_1, torch.Size))
    flops += layer_norm_cost(tokens * e, isinstance(norm_weight_2, torch.Size), isinstance(norm_bias_2, torch.Size))
    return macs, flops


# ---------------------------------------------------------------------------------------- norms
@_rule(aten.native_layer_norm, family=NORM)
def native_layer_norm(x, normalized_shape, weight=None, bias=None, *args, out=None, **kwargs) -> Cost:
    """layer norm: 4 FLOPs per element (mean, centre, variance, scale) + 1 each for weight and bias."""
    return 0, layer_norm_cost(numel(x), weight is not None, bias is not None)


@_rule(aten.native_group_norm, family=NORM)
def native_group_norm(x, weight=None, bias=None, *args, out=None, **kwargs) -> Cost:
    """group norm: 4 FLOPs per element (mean, centre, variance, scale) + 1 each for weight and bias."""
    return 0, layer_norm_cost(numel(x), weight is not None, bias is not None)


@_rule("_fused_rms_norm", family=NORM)
def fused_rms_norm(x, normalized_shape, weight=None, *args, out=None, **kwargs) -> Cost:
    """RMS norm: 3 FLOPs per element (square, accumulate, scale) + 1 for the weight."""
    return 0, numel(x) * (3 + int(weight is not None))


@_rule(aten.native_batch_norm, "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
         "_native_batch_norm_legit_functional", "_batch_norm_with_update", "_batch_norm_no_update",
         "_batch_norm_with_update_functional", "cudnn_batch_norm", "miopen_batch_norm", family=NORM)
def batch_norm(x, *args, out=None, **kwargs) -> Cost:
    """batch norm: 2 FLOPs per element (one scale, one shift) in every mode; batch statistics in training are not counted, so train and eval agree."""
    return 0, 2 * numel(x)


# ----------------------------------------------------------------------------- softmax, elementwise
@_rule(aten._softmax, aten._log_softmax, "_safe_softmax", "_masked_softmax", family=SOFTMAX)
def softmax(x, *args, out=None, **kwargs) -> Cost:
    """softmax / log-softmax: 3 FLOPs per input element (exp, row sum, divide)."""
    return 0, 3 * numel(x)


def _per_output(k: int, family: str, names: Iterable[str], doc: str) -> None:
    def fn(*args, out=None, **kwargs) -> Cost:
        return 0, k * numel(_first(out))

    fn.__doc__ = doc
    _rule(*names, family=family)(fn)


def _with_inplace(names: Iterable[str]) -> list[str]:
    return [n2 for n in names for n2 in (n, n + "_")]


ACTIVATIONS = ("relu", "gelu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid", "hardtanh", "leaky_relu", "elu",
               "selu", "celu", "mish", "softplus", "softshrink", "hardshrink", "threshold", "prelu",
               "_prelu_kernel", "rrelu_with_noise", "glu", "log_sigmoid_forward", "relu6", "logit")
_per_output(1, ACTIVATION, _with_inplace(ACTIVATIONS), "activation: 1 FLOP per output element.")

POINTWISE = ("add", "sub", "rsub", "mul", "div", "neg", "reciprocal", "sqrt", "rsqrt", "exp", "exp2", "expm1", "log",
             "log2", "log10", "log1p", "pow", "abs", "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh",
             "cosh", "asinh", "acosh", "atanh", "erf", "erfc", "erfinv", "floor", "ceil", "round", "trunc", "frac",
             "remainder", "fmod", "maximum", "minimum", "fmax", "fmin", "clamp", "clamp_min", "clamp_max", "square",
             "xlogy", "hypot", "copysign", "sign", "sgn", "lerp", "floor_divide", "true_divide", "heaviside",
             "nan_to_num")
_per_output(1, ELEMENTWISE, _with_inplace(POINTWISE), "elementwise: 1 FLOP per output element.")
_per_output(2, ELEMENTWISE, _with_inplace(("addcmul", "addcdiv")), "fused multiply-add elementwise: 2 FLOPs per output element.")


def _per_input(k: int, family: str, names: Iterable[str], doc: str) -> None:
    def fn(x=None, *args, out=None, **kwargs) -> Cost:
        return 0, k * numel(x if isinstance(x, torch.Size) else _first(out))

    fn.__doc__ = doc
    _rule(*names, family=family)(fn)


_per_input(1, REDUCTION, ("sum", "mean", "nansum", "nanmean", "prod", "amax", "amin", "aminmax", "max", "min",
                          "logcumsumexp", "cumsum", "cumprod", "cummax", "cummin"),
           "reduction / scan: 1 FLOP per input element.")
_per_input(2, REDUCTION, ("linalg_vector_norm", "norm", "_euclidean_dist"),
           "vector norm: 2 FLOPs per input element (square, accumulate).")
_per_input(3, REDUCTION, ("var", "std", "var_mean", "std_mean", "logsumexp"),
           "variance / std / logsumexp: 3 FLOPs per input element.")
_per_input(1, SELECTION, ("topk", "sort", "kthvalue", "median", "nanmedian", "mode"),
           "top-k / sort selection: 1 comparison per input element (a lower bound; data movement is free).")


@_rule(aten.scatter_add, "scatter_add_", aten.index_add, "index_add_", "scatter_reduce", "scatter_reduce_",
         "index_reduce", "index_reduce_", family=REDUCTION)
def scatter_add(x, dim, index, src=None, *args, out=None, **kwargs) -> Cost:
    """scatter/index add or reduce: 1 FLOP per source element."""
    src_shape = src if isinstance(src, torch.Size) else next((a for a in args if isinstance(a, torch.Size)), index)
    return 0, numel(src_shape)


@_rule("binary_cross_entropy_with_logits", "binary_cross_entropy", "mse_loss", "l1_loss", "smooth_l1_loss",
         "huber_loss", "soft_margin_loss", family=ELEMENTWISE)
def pointwise_loss(x, *args, out=None, **kwargs) -> Cost:
    """pointwise loss: 4 FLOPs per input element (difference or log-sigmoid, weight, reduction)."""
    return 0, 4 * numel(x)


@_rule("nll_loss_forward", "nll_loss2d_forward", family=REDUCTION)
def nll_loss(x, target, *args, out=None, **kwargs) -> Cost:
    """negative log-likelihood: 1 FLOP per target element (pick and accumulate)."""
    return 0, numel(target)


@_rule("_cdist_forward", family=REDUCTION)
def cdist(x1, x2, *args, out=None, **kwargs) -> Cost:
    """pairwise distance: 3 FLOPs per pair per feature (difference, power or abs, accumulate)."""
    return 0, 3 * numel(_first(out)) * x1[-1]


# -------------------------------------------------------------------------------- interpolation
_TAPS = {"upsample_linear1d": 2, "upsample_bilinear2d": 4, "_upsample_bilinear2d_aa": 4, "upsample_trilinear3d": 8,
         "upsample_bicubic2d": 16, "_upsample_bicubic2d_aa": 16, "grid_sampler_2d": 4, "grid_sampler_3d": 8,
         "_grid_sampler_2d_cpu_fallback": 4}
for _name, _taps in _TAPS.items():
    _per_output(2 * _taps - 1, INTERPOLATE, (_name,),
                f"{_name}: {2 * _taps - 1} FLOPs per output element ({_taps} weighted taps: 2·taps − 1).")
_per_output(0, INTERPOLATE, ("upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d",
                             "_upsample_nearest_exact1d", "_upsample_nearest_exact2d", "_upsample_nearest_exact3d"),
            "nearest interpolation: 0 FLOPs (a copy of the nearest input).")


# ------------------------------------------------------------------------------------- pooling
def _kernel_volume(kernel: Any, dims: int) -> int:
    if isinstance(kernel, int):
        return kernel ** dims
    kernel = list(kernel)
    return math.prod(kernel if len(kernel) == dims else kernel * dims)


@_rule(aten.max_pool2d_with_indices, aten.max_pool3d_with_indices, "max_pool2d", "max_pool1d", "max_pool3d",
         "mkldnn_max_pool2d", family=POOL)
def max_pool(x, kernel_size, *args, out=None, **kwargs) -> Cost:
    """max pool: (kernel volume − 1) comparisons per output element."""
    dims = max(len(_first(out)) - 2, 1)
    return 0, (_kernel_volume(kernel_size, dims) - 1) * numel(_first(out))


@_rule(aten.avg_pool2d, aten.avg_pool3d, "avg_pool1d", family=POOL)
def avg_pool(x, kernel_size, *args, out=None, **kwargs) -> Cost:
    """average pool: kernel volume FLOPs per output element (adds and one divide)."""
    dims = max(len(_first(out)) - 2, 1)
    return 0, _kernel_volume(kernel_size, dims) * numel(_first(out))


@_rule(aten._adaptive_avg_pool2d, aten._adaptive_avg_pool3d, "adaptive_avg_pool1d", "adaptive_avg_pool2d", family=POOL)
def adaptive_avg_pool(x, *args, out=None, **kwargs) -> Cost:
    """adaptive average pool: 1 FLOP per input element + 1 divide per output element."""
    return 0, numel(x) + numel(_first(out))


@_rule(aten.adaptive_max_pool2d, aten.adaptive_max_pool3d, "adaptive_max_pool1d", family=POOL)
def adaptive_max_pool(x, *args, out=None, **kwargs) -> Cost:
    """adaptive max pool: 1 comparison per input element."""
    return 0, numel(x)


# --------------------------------------------------------------------------- zero-cost operations
ZERO_OPS = (
    # views, reshapes, copies, layout
    "view", "_unsafe_view", "reshape", "_reshape_alias", "permute", "transpose", "t", "expand", "expand_as",
    "squeeze", "unsqueeze", "flatten", "unflatten", "select", "slice", "split", "split_with_sizes", "chunk",
    "unbind", "narrow", "as_strided", "alias", "detach", "clone", "contiguous", "copy", "_to_copy", "to",
    "_copy_from", "_copy_from_and_resize", "lift_fresh", "lift_fresh_copy", "view_as_real", "view_as_complex",
    "movedim", "diagonal", "unfold", "im2col", "pixel_shuffle", "pixel_unshuffle",
    "channel_shuffle", "native_channel_shuffle", "_local_scalar_dense", "set", "resize", "_resize_output",
    "roll", "flip", "repeat", "tile", "repeat_interleave",
    # concatenation, padding, selection by index or mask
    "cat", "stack", "constant_pad_nd", "reflection_pad1d", "reflection_pad2d", "reflection_pad3d",
    "replication_pad1d", "replication_pad2d", "replication_pad3d", "_pad_circular", "index", "index_select",
    "gather", "scatter", "index_put", "_index_put_impl", "masked_fill", "masked_scatter", "masked_select",
    "where", "embedding", "take", "take_along_dim", "tril", "triu", "nonzero", "argwhere",
    # creation and random numbers
    "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros", "zeros_like", "new_zeros",
    "ones", "ones_like", "new_ones", "full", "full_like", "new_full", "fill", "zero", "arange", "linspace",
    "logspace", "eye", "scalar_tensor", "rand", "rand_like", "randn", "randn_like", "randint", "randint_like",
    "randperm", "normal", "uniform", "bernoulli", "multinomial", "exponential", "_assert_async",
    "_assert_tensor_metadata", "_functional_assert_async", "sym_constrain_range_for_size", "record_stream",
    # predicates and comparisons: they produce booleans, not floating-point results
    "eq", "ne", "lt", "le", "gt", "ge", "isfinite", "isnan", "isinf", "isposinf", "isneginf", "signbit",
    "logical_and", "logical_or", "logical_not", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_not",
    "bitwise_xor", "argmax", "argmin", "all", "any", "count_nonzero", "equal", "allclose", "isclose",
    "bucketize", "searchsorted", "_unique2", "unique_dim", "unique_consecutive",
)
ZERO_FAMILY_DROPOUT = ("native_dropout", "dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout",
                       "native_dropout_backward")


def _zero(*args, out=None, **kwargs) -> Cost:
    """data movement, creation, selection or predicate: 0 FLOPs."""
    return 0, 0


_rule(*_with_inplace(ZERO_OPS), family=MEMORY)(_zero)


def _dropout(*args, out=None, **kwargs) -> Cost:
    """dropout: 0 FLOPs in every mode (regularisation, identity at inference), so train and eval agree."""
    return 0, 0


_rule(*_with_inplace(ZERO_FAMILY_DROPOUT), family=DROPOUT)(_dropout)


def _packets(names: Iterable[str]) -> frozenset:
    return frozenset(p for p in (_packet(n) for n in names) if p is not None)


# Dropout masks (CountingMode._dropout in counter.py): a bernoulli draw is a mask; a uniform draw
# becomes one when a comparison or floor binarises it (``rand(...) < p``, ``floor(keep + rand(...))``).
# Non-GEMM work on a mask is dropout (0); a uniform draw that is never binarised is noise, priced.
MASK_SOURCES = _packets(("bernoulli", "bernoulli_"))
DRAW_SOURCES = _packets(("rand", "rand_like", "uniform", "uniform_"))
BINARISERS = _packets(_with_inplace(("lt", "le", "gt", "ge", "floor")))

# Composite ops that are never decomposed, because the decomposition would count what the
# convention says is free (dropout's mask arithmetic).
UNITS = _packets(_with_inplace(ZERO_FAMILY_DROPOUT))


def generic_backward(*args, out=None, **kwargs) -> Cost:
    """backward op without a rule of its own: 1 FLOP per element of the gradients it produces."""
    total, stack = 0, [out]
    while stack:
        o = stack.pop()
        if isinstance(o, torch.Size):
            total += numel(o)
        elif isinstance(o, (tuple, list)):
            stack.extend(o)
    return 0, total


GENERIC_BACKWARD = Formula(generic_backward, BACKWARD, (generic_backward.__doc__ or "").strip())


def lookup(packet: Any) -> Formula | None:
    """The rule for an op packet: its registered formula, the generic backward rule, or None."""
    rule = FORMULAS.get(packet)
    if rule is None and "_backward" in str(packet):
        return GENERIC_BACKWARD
    return rule


def conventions() -> list[dict[str, str]]:
    """One row per registered rule: op, family, convention (what the docs and tables print)."""
    return sorted(({"op": str(p), "family": f.family, "convention": f.convention} for p, f in FORMULAS.items()),
                  key=lambda r: (FAMILIES.index(r["family"]) if r["family"] in FAMILIES else 99, r["op"]))
