"""The exact optimum: the weights that minimise the loss on the training rows, in float64.

- **mse**: least squares, by QR (LAPACK ``gelsy`` through ``torch.linalg.lstsq``) on the standardized design,
  or from the normal equations when the rows are only streamed.
- **mae** and **quantile**: least absolute deviations (the median regression) and, at any τ, quantile
  regression: a linear program solved by the Frisch–Newton interior-point method
  (Portnoy and Koenker, 1997: the primal-dual path-following algorithm with Mehrotra's predictor-corrector step
  behind R's ``quantreg::rq(method = "fn")``). Each iteration costs one weighted Gram matrix DᵀWD, so 1,000,000
  rows take seconds. Its solution is then moved to the exact vertex of the LP: the p rows with the smallest
  residuals are fitted exactly and the vertex is kept when the subgradient condition certifies it.
- **huber**: Newton's method with a backtracking line search. The loss is piecewise quadratic, so Newton ends
  exactly once the set of rows inside ±delta stops changing. With the scale estimated (delta = k·MAD, RLM's
  definition), Newton at a scale and the MAD of its residuals alternate to their joint fixed point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from lit_linreg.losses import HuberLoss, Loss
from lit_linreg.stats.huber_fixed_point import m_estimates, mad
from lit_linreg.stats.rows import DesignRows


@dataclass
class ExactFit:
    """β in the coordinates of ``DesignRows`` (kept columns, then the intercept), and how it was found."""

    beta: Tensor
    method: str
    iterations: int = 0
    loss: Loss | None = None  # the loss at the optimum, when the fit estimated part of it (Huber's scale)


def least_squares(rows: DesignRows) -> Tensor:
    d = rows.matrix()
    if d is not None:
        return torch.linalg.lstsq(d, rows.t[:, None], driver="gelsy").solution.squeeze(1)
    return torch.linalg.solve(rows.gram(), rows.rmatvec(rows.t))


def mean_loss(rows: DesignRows, beta: Tensor, loss: Loss) -> float:
    total = sum(float(loss.elementwise(d @ beta - t).sum()) for d, t in rows.blocks())
    return total / max(rows.n, 1)


# ----------------------------------------------------------------------------------------------------------------
# Least absolute deviations


def quantile_regression(
    rows: DesignRows, tau: float = 0.5, tolerance: float = 1e-10, max_iter: int = 100
) -> tuple[Tensor, int]:
    """argmin_β Σρ_τ(t_i - d_i·β) by Frisch–Newton, made exact: its vertex when certified, else a
    certified-accurate point. τ = 1/2 is least absolute deviations.

    The interior point's dual iterate a (τ - 1 <= a_i <= τ, Dᵀa = 0) bounds the optimum from below,
    Σρ_τ(r_i) >= tᵀa, so its relative distance to the optimum is known. Tables with heavy ties (a target that is
    mostly 0, say) make the LP degenerate and the interior point slow; where the bound is not yet within
    ``tolerance`` and the table is small enough, HiGHS's dual simplex (scipy) finishes the job exactly.
    """
    beta, dual, iterations = _frisch_newton(rows, tau, tolerance, max_iter)
    vertex = _exact_vertex(rows, beta, tau)
    if vertex is not None:
        return vertex, iterations
    residual = rows.residuals(beta)
    objective = float(torch.maximum(tau * residual, (tau - 1) * residual).sum())
    certified = objective - float(rows.t @ dual) <= tolerance * max(objective, 1e-300)
    if certified or rows.n > SIMPLEX_MAX_ROWS or rows.matrix() is None:
        return beta, iterations
    return _highs_simplex(rows, tau), iterations


# The dual simplex takes ~0.3 s at 20,000 rows x 10 and ~6 s at 100,000 here: a fallback, not the method.
SIMPLEX_MAX_ROWS = 200_000


def _highs_simplex(rows: DesignRows, tau: float) -> Tensor:
    from scipy import optimize  # only for the rare degenerate table

    d, t = rows.matrix(), rows.t
    n = rows.n
    # The dual, max tᵀa s.t. Dᵀa = 0 and τ - 1 <= a <= τ, scaled by 2/n (±1/n for the median); β is minus the
    # multiplier of Dᵀa = 0.
    bounds = (2 * (tau - 1) / n, 2 * tau / n)
    result = optimize.linprog(-t.numpy(), A_eq=d.T.numpy(), b_eq=[0.0] * rows.p, bounds=bounds, method="highs-ds")
    if result.status != 0:
        raise RuntimeError(f"the linear program for the exact quantile-regression optimum failed: {result.message}")
    return torch.from_numpy(-result.eqlin.marginals)


def _frisch_newton(rows: DesignRows, tau: float, tolerance: float, max_iter: int) -> tuple[Tensor, Tensor, int]:
    """The dual of quantile regression: max tᵀa s.t. Dᵀa = 0, τ - 1 <= a <= τ; β is minus its multiplier.

    Written, as in Koenker's ``rq.fit.fnb``, as min cᵀx s.t. Dᵀx = Dᵀ·1(1 - τ), 0 <= x <= 1 with c = -t and
    a = x - (1 - τ), started at x = 1 - τ. Every Newton system is (Dᵀ Q D) dy = Dᵀ Q v with Q = diag(q), solved
    by Cholesky. Returns (β, a, iterations).
    """
    n, step_back = rows.n, 0.99995
    c = -rows.t
    x = torch.full((n,), 1 - tau, dtype=torch.float64)
    s = 1 - x
    b = rows.rmatvec(x)
    y = _solve(rows.gram(), rows.rmatvec(c))
    r = c - rows.matvec(y)
    r = torch.where(r == 0, torch.full_like(r, 1e-3), r)
    z, w = r.clamp(min=0), (-r).clamp(min=0)
    best_gap, stalled = float("inf"), 0
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (reported)
        gap = float(c @ x - y @ b + w.sum())
        # Stop at a small duality gap: the exact vertex is found from here. Past the precision of float64 the
        # Newton systems blow up, so a gap that has not improved for a few iterations stops them too.
        if gap < best_gap:
            best_gap, stalled = gap, 0
        else:
            stalled += 1
        if gap <= tolerance * (1 + abs(float(c @ x))) or stalled >= 5:
            break
        q = 1 / (z / x + w / s)
        r = z - w
        gram = rows.gram(q)
        dy = _solve(gram, rows.rmatvec(q * r))
        dx = q * (rows.matvec(dy) - r)
        ds = -dx
        dz = -z * (dx / x + 1)
        dw = -w * (ds / s + 1)
        primal = min(_bound(x, dx), _bound(s, ds))
        dual = min(_bound(w, dw), _bound(z, dz))
        primal, dual = min(step_back * primal, 1.0), min(step_back * dual, 1.0)
        if min(primal, dual) < 1:  # Mehrotra's corrector, centred by mu
            mu = float(z @ x + w @ s)
            g = float((z + dual * dz) @ (x + primal * dx) + (w + dual * dw) @ (s + primal * ds))
            mu = mu * (g / mu) ** 3 / (2 * n)
            dxdz, dsdw = dx * dz, ds * dw
            x_inv, s_inv = 1 / x, 1 / s
            xi = mu * (x_inv - s_inv)
            dy = _solve(gram, rows.rmatvec(q * (r + dxdz - dsdw - xi)))
            dx = q * (rows.matvec(dy) + xi - r - dxdz + dsdw)
            ds = -dx
            dz = mu * x_inv - z - x_inv * z * dx - dxdz
            dw = mu * s_inv - w - s_inv * w * ds - dsdw
            primal = min(step_back * min(_bound(x, dx), _bound(s, ds)), 1.0)
            dual = min(step_back * min(_bound(w, dw), _bound(z, dz)), 1.0)
        if not (math.isfinite(primal) and math.isfinite(dual) and torch.isfinite(dy).all()):
            break  # the Newton system has lost all precision: keep the last finite iterate
        x, s = x + primal * dx, s + primal * ds
        y, w, z = y + dual * dy, w + dual * dw, z + dual * dz
    return -y, x - (1 - tau), iterations


def batched_frisch_newton(
    design: Tensor, targets: Tensor, tau: float, tolerance: float = 1e-10, max_iter: int = 100
) -> tuple[Tensor, Tensor]:
    """(β (B, q), the dual iterate x (B, n), 0 <= x <= 1): the iterations of ``_frisch_newton`` run side by side
    on B problems, designs (B, n, q) (or one (n, q) for all) and targets (B, n), one batched q x q solve each;
    a problem's iterate is frozen once its duality gap is within ``tolerance`` (relative).

    Interior-point accurate, not moved to a vertex. x is the problem's regression rank scores (Gutenbrunner and
    Jurečková, 1992), the rank-score test's input; a bootstrap's refits are its β.
    """
    batch, n = targets.shape
    columns = design.shape[-1]
    if design.dim() == 2:
        # One design for every problem (a Monte Carlo test's draws): Dᵀdiag(v)D = Σ v_i·d_i d_iᵀ, Dᵀv and D·v are
        # then one matrix product for the whole batch, not B small ones (1.8 -> 1.05 s for 2,985 problems of 64 x 20).
        outer = (design[:, :, None] * design[:, None, :]).flatten(1)  # (n, q²)

        def gram(v: Tensor) -> Tensor:  # Dᵀdiag(v)D for each problem's v
            return (v @ outer).view(batch, columns, columns)

        def across(v: Tensor) -> Tensor:  # Dᵀv
            return v @ design

        def along(v: Tensor) -> Tensor:  # D·v
            return v @ design.T
    else:
        transposed = design.transpose(1, 2)

        def gram(v: Tensor) -> Tensor:
            return (transposed * v[:, None, :]) @ design

        def across(v: Tensor) -> Tensor:
            return (transposed @ v[:, :, None]).squeeze(2)

        def along(v: Tensor) -> Tensor:
            return (design @ v[:, :, None]).squeeze(2)

    step_back = 0.99995
    c = -targets
    x = torch.full((batch, n), 1 - tau, dtype=torch.float64)
    s = 1 - x
    b = (1 - tau) * across(torch.ones_like(c))
    y = torch.linalg.solve(gram(torch.ones_like(c)), across(c)[:, :, None]).squeeze(2)
    r = c - along(y)
    r = torch.where(r == 0, torch.full_like(r, 1e-3), r)
    z, w = r.clamp(min=0), (-r).clamp(min=0)

    active = torch.ones(batch, dtype=torch.bool)
    for _ in range(max_iter):
        objective = (c * x).sum(1)
        gap = objective - (y * b).sum(1) + w.sum(1)
        active &= gap > tolerance * (1 + objective.abs())
        if not active.any():
            break
        q = 1 / (z / x + w / s)
        r = z - w
        factor, info = torch.linalg.cholesky_ex(gram(q))
        active &= info == 0  # lost to rounding: keep the last iterate
        factor = torch.where((info == 0)[:, None, None], factor, torch.eye(columns, dtype=factor.dtype))
        dy = torch.cholesky_solve(across(q * r)[:, :, None], factor).squeeze(2)
        dx = q * (along(dy) - r)
        dz = -z * (dx / x + 1)
        dw = w * (dx / s - 1)  # -w·(ds/s + 1) with ds = -dx
        primal, dual = _steps(x, dx, s, w, dw, z, dz, step_back)
        # Mehrotra's corrector, centred by mu, for every problem (a full step needs no centring, and the
        # corrected direction is as good there)
        mu = (z * x).sum(1) + (w * s).sum(1)
        g = ((z + dual[:, None] * dz) * (x + primal[:, None] * dx)).sum(1)
        g = g + ((w + dual[:, None] * dw) * (s - primal[:, None] * dx)).sum(1)
        mu = (mu * (g / mu) ** 3 / (2 * n))[:, None]
        ds = -dx
        dxdz, dsdw = dx * dz, ds * dw
        x_inv, s_inv = 1 / x, 1 / s
        xi = mu * (x_inv - s_inv)
        dy = torch.cholesky_solve(across(q * (r + dxdz - dsdw - xi))[:, :, None], factor).squeeze(2)
        dx = q * (along(dy) + xi - r - dxdz + dsdw)
        ds = -dx
        dz = mu * x_inv - z - x_inv * z * dx - dxdz
        dw = mu * s_inv - w - s_inv * w * ds - dsdw
        primal, dual = _steps(x, dx, s, w, dw, z, dz, step_back)
        # A problem whose Newton system has lost all precision keeps its last finite iterate (0 x NaN is NaN, so
        # its directions are zeroed, not only its step).
        finite = torch.isfinite(primal + dual + dx.sum(1) + dy.sum(1) + dz.sum(1) + dw.sum(1))
        active &= finite
        primal = torch.where(active, primal, 0.0)[:, None]
        dual = torch.where(active, dual, 0.0)[:, None]
        if not finite.all():
            dx, dy, dz, dw = (torch.where(finite[:, None], d, 0.0) for d in (dx, dy, dz, dw))
        x, s = x + primal * dx, s - primal * dx
        y, w, z = y + dual * dy, w + dual * dw, z + dual * dz
    return -y, x


def _steps(
    x: Tensor, dx: Tensor, s: Tensor, w: Tensor, dw: Tensor, z: Tensor, dz: Tensor, step_back: float
) -> tuple[Tensor, Tensor]:
    """Per problem (row), the primal and dual step lengths: step_back times the largest step a keeping x + a·dx,
    s - a·dx (primal) and w + a·dw, z + a·dz (dual) non-negative, at most 1."""

    def largest(v: Tensor, dv: Tensor) -> Tensor:  # per problem; 1e20 when nothing falls
        return torch.where(dv < 0, -v / dv.clamp(max=-1e-300), 1e20).amin(-1)

    # s - a·dx, so x bounds the rows where dx falls and s those where it rises: one pass, not two.
    primal = (torch.where(dx < 0, x, s) / dx.abs().clamp(min=1e-300)).amin(-1) * step_back
    dual = torch.minimum(largest(w, dw), largest(z, dz)) * step_back
    return primal.clamp(max=1), dual.clamp(max=1)


def _bound(v: Tensor, dv: Tensor) -> float:
    """The largest step a with v + a·dv >= 0 (1e20 when nothing falls)."""
    # One masked minimum, not a boolean gather and a test: this runs 8 times an iteration, and on small tables
    # the gather's bookkeeping was a third of the fit (9.4 ms for 16 rows x 5).
    return min(float(torch.where(dv < 0, -v / dv, math.inf).min()), 1e20)


def _solve(gram: Tensor, rhs: Tensor) -> Tensor:
    factor, info = torch.linalg.cholesky_ex(gram)
    if int(info) == 0:
        return torch.cholesky_solve(rhs[:, None], factor).squeeze(1)
    return torch.linalg.lstsq(gram, rhs[:, None]).solution.squeeze(1)


def _exact_vertex(rows: DesignRows, beta: Tensor, tau: float) -> Tensor | None:
    """The LP vertex near β: fit the p rows with the smallest residuals exactly; keep it if it is optimal.

    Optimality (Koenker, 2005, theorem 2.1): with h the rows fitted exactly and u the other residuals, the vertex
    is a minimum when ξ = D_h⁻ᵀ · Σ_{i∉h} ψ_τ(u_i)·d_i, ψ_τ(u) = τ - 1{u < 0}, has -τ <= ξ_j <= 1 - τ.
    """
    p = rows.p
    if rows.n < p:
        return None
    residual = rows.residuals(beta)
    # The rows nearest the fit, skipping any that depends on those before it: with a 0/1 column, say, the p
    # nearest rows are often dependent, and a vertex needs p independent ones.
    nearest = residual.abs().topk(min(rows.n, 4 * p), largest=False).indices
    d_near, _ = _rows_at(rows, nearest)
    independent = _independent_rows(d_near, p)
    if independent is None:
        return None
    basis = nearest[independent]
    d_h, t_h = _rows_at(rows, basis)
    try:
        vertex = torch.linalg.solve(d_h, t_h)
        u = rows.residuals(vertex)
        psi = tau * (u > 0).to(u.dtype) - (1 - tau) * (u < 0).to(u.dtype)  # 0 where fitted exactly (ties too)
        psi[basis] = 0
        xi = torch.linalg.solve(d_h.T, rows.rmatvec(psi))
    except RuntimeError:  # singular: repeated or dependent rows in the basis (a 0/1 column's rows, say)
        return None
    slack = 1e-9 / 2  # the median's |2ξ| <= 1 + 1e-9
    if not torch.isfinite(xi).all() or float(xi.min()) < -tau - slack or float(xi.max()) > 1 - tau + slack:
        return None
    return vertex


def _independent_rows(d: Tensor, p: int) -> Tensor | None:
    """The first p rows of ``d`` (in order) that are linearly independent of the rows taken before them, by
    Gram-Schmidt; None if there are not p of them."""
    taken: list[int] = []
    orthonormal = torch.empty(0, d.shape[1], dtype=d.dtype)
    for i, row in enumerate(d):
        rest = row - orthonormal.T @ (orthonormal @ row)
        rest = rest - orthonormal.T @ (orthonormal @ rest)  # twice is enough (Kahan), in float64
        size = float(rest.norm())
        if size > 1e-9 * max(float(row.norm()), 1e-300):
            taken.append(i)
            orthonormal = torch.cat([orthonormal, (rest / size)[None]])
            if len(taken) == p:
                return torch.tensor(taken)
    return None


def _rows_at(rows: DesignRows, index: Tensor) -> tuple[Tensor, Tensor]:
    d = rows.matrix()
    if d is not None:
        return d[index], rows.t[index]
    wanted = set(index.tolist())
    picked: dict[int, tuple[Tensor, Tensor]] = {}
    start = 0
    for block, t in rows.blocks():
        for i in range(start, start + len(block)):
            if i in wanted:
                picked[i] = (block[i - start], t[i - start])
        start += len(block)
    ordered = [picked[i] for i in index.tolist()]
    return torch.stack([r for r, _ in ordered]), torch.stack([t for _, t in ordered])


# ----------------------------------------------------------------------------------------------------------------
# Huber


def huber_m_estimate(rows: DesignRows, k: float, max_iter: int = 500) -> tuple[Tensor, float, int]:
    """(β, scale, Newton iterations) at the joint fixed point of β = argmin Σ ρ_k(r/scale) and scale =
    median |r| / Φ⁻¹(3/4): statsmodels' RLM(M=HuberT(k)) with its defaults (scale_est="mad", update_scale=True),
    solved to the point rather than to RLM's tolerance on the deviance. It starts, as RLM does, from least
    squares and the MAD of its residuals, and ends, with the rows in memory, at the fixed point's linear solution
    for the sets it reached (``stats.huber_fixed_point``): the alternation stops where the scale moves by less
    than 1e-13 of itself, which the last bits of threaded sums can put an iteration earlier or later (β moved by
    2.5e-10 between two runs), where that solution is the same point to rounding."""
    beta = least_squares(rows)
    scale = float(mad(rows.residuals(beta)[None])[0])
    total = 0
    for _ in range(max_iter):
        if scale == 0:  # more than half the rows fitted exactly: nothing to be robust against
            break
        beta, iterations = huber_newton(rows, HuberLoss(k, scale), start=beta)
        total += iterations
        previous, scale = scale, float(mad(rows.residuals(beta)[None])[0])
        if abs(scale - previous) <= 1e-13 * previous:
            break
    design = rows.matrix()
    if scale > 0 and design is not None:
        # One fit of a batch of one: its own (1, n, p) design, not the (n, p²) products a shared one would build.
        exact, exact_scale, settled = m_estimates(design[None], rows.t[None], k, start=beta[None], max_iterations=1)
        if settled[0]:
            beta, scale = exact[0], float(exact_scale[0])
    return beta, scale, total


def huber_newton(
    rows: DesignRows, loss: HuberLoss, max_iter: int = 200, start: Tensor | None = None
) -> tuple[Tensor, int]:
    """Newton's method from ``start`` (default: the least-squares fit), with an Armijo backtracking line search."""
    beta = least_squares(rows) if start is None else start
    current = mean_loss(rows, beta, loss)
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (reported)
        residual = rows.matvec(beta) - rows.t
        gradient = rows.rmatvec(loss.psi(residual)) / rows.n
        inside = loss.psi_prime(residual)
        hessian = rows.gram(inside) / rows.n
        # A few rows inside ±delta can leave the Hessian singular: a tiny ridge keeps the step defined.
        hessian += torch.eye(rows.p, dtype=torch.float64) * (1e-12 * float(hessian.diagonal().max()) + 1e-300)
        step = _solve(hessian, gradient)
        slope = float(gradient @ step)
        size = 1.0
        while True:
            candidate = beta - size * step
            value = mean_loss(rows, candidate, loss)
            if value <= current - 1e-4 * size * slope or size < 1e-10:
                break
            size /= 2
        converged = float((candidate - beta).abs().max()) <= 1e-14 * (1 + float(beta.abs().max()))
        beta, current = candidate, min(value, current)
        if converged:
            break
    return beta, iterations
