"""Neural variational lower bounds on MI (torch): InfoNCE, NWJ, and a predictive probe.

All three train on one part of the data and report the bound on held-out data, so the number
is an honest lower bound in expectation (a critic that overfits gives a *smaller* held-out
value, never a larger one).  The data are split into train (60 %), validation (20 %, for early
stopping: the best epoch is kept) and test (20 %, the reported value).

* ``infonce`` (van den Oord et al. 2018; Poole et al. 2019): I ≥ E[f(x_i, y_i) − log (1/K) Σ_j
  e^{f(x_i, y_j)}] over batches of K pairs.  Low variance, but it can never exceed log K
  (``batch_size``), so it saturates on large MI.
* ``nwj`` (Nguyen, Wainwright & Jordan 2010): I ≥ E_p[f] − e^{−1} E_{p(x)p(y)}[e^f].  Not capped
  by the batch size, but high variance: one held-out pair with a huge score dominates the
  exponential term, so the critic is passed through 10·tanh(f/10) (any bounded function of a
  critic is a critic, so the bound stays valid; per-pair log ratios above 10 nats are lost).
* ``probe``: for discrete Y, the held-out cross-entropy of the best constant predictor (the
  training label frequencies) minus that of a classifier q(y|x): the predictive V-information
  (Xu et al. 2020), a lower bound on I(X;Y) that is tight when the classifier family contains
  the true posterior.

The critic is separable, f(x, y) = g(x)·h(y) + a(x) + b(y) with two MLPs, so a batch of K×K
scores costs one matrix product.  Inputs are standardised.  Each bound's standard error comes
from its per-sample held-out terms (``terms``), which the API uses for a CLT interval and a
one-sided test of "bound > 0".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hsgprof.errors import HsgprofError

NWJ_CAP = 10.0  # NWJ critic saturates smoothly at ±10 nats: one extreme held-out pair cannot wreck the bound


def _torch():
    import torch
    return torch


def _mlp(din: int, dout: int, hidden: int, layers: int):
    nn = _torch().nn
    mods, d = [], din
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.ReLU()]
        d = hidden
    mods.append(nn.Linear(d, dout))
    return nn.Sequential(*mods)


def _split(n: int, rng: np.random.Generator, what: str, minimum: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    perm = rng.permutation(n)
    n_tr, n_va = int(0.6 * n), int(0.2 * n)
    tr, va, te = perm[:n_tr], perm[n_tr:n_tr + n_va], perm[n_tr + n_va:]
    if min(len(va), len(te)) < minimum:
        raise HsgprofError(f"N={n} is too small for {what} (train/validation/test 60/20/20 %); accepted: N >= {5 * minimum}")
    return tr, va, te


def _std(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    sd = ref.std(0)
    return ((a - ref.mean(0)) / np.where(sd > 0, sd, 1.0)).astype(np.float32)


def _seed_torch(rng: np.random.Generator) -> int:
    seed = int(rng.integers(2**31 - 1))
    _torch().manual_seed(seed)
    return seed


class _Critic:
    """f(x, y) = g(x)·h(y) + a(x) + b(y) for all pairs of a batch (K×K scores)."""

    def __init__(self, dx: int, dy: int, hidden: int, layers: int, embed: int):
        self.g = _mlp(dx, embed + 1, hidden, layers)
        self.h = _mlp(dy, embed + 1, hidden, layers)

    def parameters(self):
        return list(self.g.parameters()) + list(self.h.parameters())

    def scores(self, x, y):
        gx, hy = self.g(x), self.h(y)
        return gx[:, :-1] @ hy[:, :-1].T + gx[:, -1:] + hy[:, -1][None, :]

    def state(self):
        return [m.state_dict() for m in (self.g, self.h)]

    def load(self, st):
        self.g.load_state_dict(st[0])
        self.h.load_state_dict(st[1])


def _bound_terms(kind: str, s) -> Any:
    """Per-row terms of a bound from a K×K score matrix (rows x_i, columns y_j; diagonal = pairs)."""
    torch = _torch()
    k = s.shape[0]
    diag = torch.diagonal(s)
    if kind == "infonce":
        return diag - torch.logsumexp(s, dim=1) + math.log(k)
    s = NWJ_CAP * torch.tanh(s / NWJ_CAP)  # a bounded critic is still a critic: the bound stays valid
    diag = torch.diagonal(s)
    off = ~torch.eye(k, dtype=torch.bool)
    es = torch.exp(s) * off
    return diag - math.exp(-1.0) * es.sum(1) / (k - 1)


def _eval_terms(critic, kind: str, x, y, batch: int, rng: np.random.Generator) -> np.ndarray:
    torch = _torch()
    n = x.shape[0]
    kk = min(batch, n)
    perm = rng.permutation(n)
    out = []
    with torch.no_grad():
        for s in range(0, n - kk + 1, kk):
            idx = torch.from_numpy(perm[s:s + kk])
            out.append(_bound_terms(kind, critic.scores(x[idx], y[idx])).numpy())
    return np.concatenate(out).astype(np.float64)


def critic_bound(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, *, kind: str, hidden: int = 64,
                 layers: int = 2, embed: int = 32, batch_size: int = 256, max_epochs: int = 100, patience: int = 10,
                 lr: float = 1e-3) -> tuple[float, dict, np.ndarray]:
    """Train a separable critic on 60 % of the rows and return the held-out ``infonce``/``nwj`` bound (nats).

    Returns (value, details, per-sample held-out terms).
    """
    torch = _torch()
    n = x.shape[0]
    tr, va, te = _split(n, rng, kind)
    if batch_size < 2:
        raise HsgprofError(f"batch_size={batch_size}; accepted: an integer >= 2")
    xs, ys = _std(x, x[tr]), _std(y, y[tr])
    tx, ty = torch.from_numpy(xs), torch.from_numpy(ys)
    torch_seed = _seed_torch(rng)
    critic = _Critic(x.shape[1], y.shape[1], hidden, layers, embed)
    opt = torch.optim.Adam(critic.parameters(), lr=lr)
    bs = min(batch_size, len(tr))
    best, best_state, best_epoch, since = -np.inf, critic.state(), 0, 0
    eval_rng = np.random.default_rng(int(rng.integers(2**31 - 1)))
    epoch = 0
    for epoch in range(1, max_epochs + 1):
        perm = tr[rng.permutation(len(tr))]
        for s in range(0, len(perm) - bs + 1, bs):
            idx = torch.from_numpy(perm[s:s + bs])
            loss = -_bound_terms(kind, critic.scores(tx[idx], ty[idx])).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        val = float(np.mean(_eval_terms(critic, kind, tx[va], ty[va], bs, eval_rng)))
        if val > best:
            best, best_state, best_epoch, since = val, critic.state(), epoch, 0
        else:
            since += 1
            if since >= patience:
                break
    critic.load(best_state)
    terms = _eval_terms(critic, kind, tx[te], ty[te], bs, eval_rng)
    details = {"n_train": len(tr), "n_test": len(te), "best_epoch": best_epoch, "epochs_run": epoch,
               "torch_seed": torch_seed, "batch_size_eff": bs,
               "cap_log_batch": math.log(bs) if kind == "infonce" else None}
    return float(np.mean(terms)), details, terms


def probe(x: np.ndarray, labels: np.ndarray, rng: np.random.Generator, *, hidden: int = 64, layers: int = 1,
          batch_size: int = 256, max_epochs: int = 100, patience: int = 10, lr: float = 1e-3,
          weight_decay: float = 1e-4, max_classes: int = 1000) -> tuple[float, dict, np.ndarray]:
    """Held-out predictive information I_V(X → Y) = CE(prior) − CE(classifier) for discrete ``labels`` (nats).

    Returns (value, details, per-sample held-out terms log q(y|x) − log p̂(y)).
    """
    torch = _torch()
    n = x.shape[0]
    if labels.shape[1] != 1:
        _, codes = np.unique(labels, axis=0, return_inverse=True)
    else:
        _, codes = np.unique(labels[:, 0], return_inverse=True)
    codes = codes.reshape(-1)
    m = int(codes.max()) + 1
    if m > max_classes or m > n / 2:
        raise HsgprofError(f"y has {m} distinct values in N={n} rows; probe needs discrete labels in y "
                           f"(at most {max_classes} classes, and fewer than N/2); accepted: integer class codes")
    tr, va, te = _split(n, rng, "probe")
    xs = torch.from_numpy(_std(x, x[tr]))
    yc = torch.from_numpy(codes.astype(np.int64))
    prior = np.bincount(codes[tr], minlength=m) + 0.5
    log_prior = torch.from_numpy(np.log(prior / prior.sum()).astype(np.float32))
    torch_seed = _seed_torch(rng)
    net = _mlp(x.shape[1], m, hidden, layers)
    with torch.no_grad():  # start from the prior: the probe begins at I_V = 0
        net[-1].bias.copy_(log_prior)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    lossf = torch.nn.CrossEntropyLoss()
    bs = min(batch_size, len(tr))
    best, best_state, best_epoch, since, epoch = np.inf, None, 0, 0, 0
    vidx = torch.from_numpy(va)
    for epoch in range(1, max_epochs + 1):
        perm = tr[rng.permutation(len(tr))]
        for s in range(0, len(perm) - bs + 1, bs):
            idx = torch.from_numpy(perm[s:s + bs])
            loss = lossf(net(xs[idx]), yc[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            val = float(lossf(net(xs[vidx]), yc[vidx]))
        if val < best:
            best, best_state, best_epoch, since = val, {k: v.clone() for k, v in net.state_dict().items()}, epoch, 0
        else:
            since += 1
            if since >= patience:
                break
    net.load_state_dict(best_state)
    with torch.no_grad():
        tidx = torch.from_numpy(te)
        logq = torch.log_softmax(net(xs[tidx]), dim=1).gather(1, yc[tidx][:, None])[:, 0]
        terms = (logq - log_prior[yc[tidx]]).numpy().astype(np.float64)
    details = {"n_train": len(tr), "n_test": len(te), "classes": m, "best_epoch": best_epoch, "epochs_run": epoch,
               "torch_seed": torch_seed}
    return float(np.mean(terms)), details, terms
