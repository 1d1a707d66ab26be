"""Independent restatements, in numpy, of statistics that no installed package computes."""

import numpy as np


def bell_mccaffrey_reference(design, slope=None):
    """Bell and McCaffrey's degrees of freedom of each coefficient's HC2 t, restated with numpy from the n x n
    matrices: ν = (Σλ)²/Σλ², λ the eigenvalues of W N W, N = (I - P)(I - P)ᵀ, P = S X B⁻¹Xᵀ, B = XᵀSX,
    w_i = (B⁻¹x_i)_j / √(1 - h_i), h_i = s_i x_iᵀB⁻¹x_i; S = diag(ψ') of an M-estimator (least squares: I)."""
    design = np.asarray(design, dtype=float)
    n = len(design)
    slope = np.ones(n) if slope is None else np.asarray(slope, dtype=float)
    bread_inverse = np.linalg.inv((design * slope[:, None]).T @ design)
    leverage = slope * np.einsum("ij,jk,ik->i", design, bread_inverse, design)
    residual_maker = np.eye(n) - (slope[:, None] * design) @ bread_inverse @ design.T
    spread = residual_maker @ residual_maker.T
    dfs = []
    for column in (design @ bread_inverse).T:
        w = np.where(leverage < 1 - 1e-12, column / np.sqrt(1 - leverage), 0.0)
        eigenvalues = np.linalg.eigvalsh(w[:, None] * spread * w[None, :])
        dfs.append(eigenvalues.sum() ** 2 / (eigenvalues**2).sum())
    return np.array(dfs)


def hc2_t(design, y, j, b):
    """(β̂_j - b) / HC2's standard error, for each column of ``y`` (n, draws), with numpy's least squares."""
    beta = np.linalg.lstsq(design, y, rcond=None)[0]
    inverse = np.linalg.inv(design.T @ design)
    leverage = np.einsum("ij,jk,ik->i", design, inverse, design)
    residual = y - design @ beta
    row = (design @ inverse)[:, j]  # β̂_j = Σ row_i y_i
    variance = (row**2 / (1 - leverage)) @ residual**2
    return (beta[j] - b) / np.sqrt(variance)


def wild_restricted_exceedances(design, y, j, b, v):
    """#{draws with |t*| >= |t|} of the wild restricted bootstrap test of β_j = b (Davidson and Flachaire, 2008),
    restated with numpy: the fit of y - b·x_j on the other columns, its residuals over √(1 - their leverage) times
    each draw's weights (``v``, draws x n) added to that fit, refitted, HC2's t about b."""
    others = np.delete(design, j, 1)
    target = y - b * design[:, j]
    gamma = np.linalg.lstsq(others, target, rcond=None)[0]
    residual = target - others @ gamma
    leverage = np.einsum("ij,jk,ik->i", others, np.linalg.inv(others.T @ others), others)
    fitted = others @ gamma + b * design[:, j]
    draws = fitted[:, None] + (residual / np.sqrt(1 - leverage))[:, None] * v.T
    return int((np.abs(hc2_t(design, draws, j, b)) >= abs(hc2_t(design, y[:, None], j, b)[0])).sum())


def assert_inverts_wild_restricted_test(design, y, lower, upper, p_values, std_errors, alpha, v):
    """Each interval [lower_j, upper_j] ends where the wild restricted bootstrap test of β_j = b starts to reject
    (1 + #{|t*| >= |t|} <= α(B + 1)), checked 1e-6 standard errors either side of each end, and each p-value is
    that test's at 0, (1 + count) / (B + 1)."""
    lower, upper, p_values, std_errors = (np.asarray(a, dtype=float) for a in (lower, upper, p_values, std_errors))
    draws = len(v)
    rejects = int(np.floor(alpha * (draws + 1) + 1e-9))
    for j in range(design.shape[1]):
        count = wild_restricted_exceedances(design, y, j, 0.0, v)
        assert abs(p_values[j] - (1 + count) / (draws + 1)) <= 1e-15, (j, p_values[j], count)
        for end, outward in ((lower[j], -1), (upper[j], 1)):
            for step, rejected in ((outward, True), (-outward, False)):
                count = wild_restricted_exceedances(design, y, j, end + step * 1e-6 * std_errors[j], v)
                assert (1 + count <= rejects) == rejected, (j, end, step, count)


def huber_fits(design, y, k=1.345, tolerance=1e-13, iterations=20_000):
    """(β, scale) of each row of ``y`` (draws, n): Huber's M-estimate with its MAD scale (median |r| / Φ⁻¹(3/4)),
    restated with numpy as statsmodels' RLM(M=HuberT()) iterates to it: IRLS from least squares, weights
    min(1, k·s/|r|), the scale re-estimated each step, every draw until its step is below ``tolerance``."""
    design, y = np.asarray(design, dtype=float), np.atleast_2d(np.asarray(y, dtype=float))
    beta = np.linalg.lstsq(design, y.T, rcond=None)[0].T
    active = np.arange(len(y))
    for _ in range(iterations):
        residual = y[active] - beta[active] @ design.T
        size = np.abs(residual)
        cut = k * np.median(size, axis=1, keepdims=True) / 0.6744897501960817
        weight = np.where(size <= cut, 1.0, cut / np.maximum(size, 1e-300))
        gram = np.einsum("di,ij,ik->djk", weight, design, design)
        new = np.linalg.solve(gram, ((weight * y[active]) @ design)[..., None])[..., 0]
        moving = np.abs(new - beta[active]).max(1) > tolerance * (1 + np.abs(new).max(1))
        beta[active] = new
        active = active[moving]
        if len(active) == 0:
            break
    assert len(active) == 0, f"{len(active)} fits still moving"
    return beta, np.median(np.abs(y - beta @ design.T), axis=1) / 0.6744897501960817


def huber_sandwich_errors(design, y, beta, scale, k=1.345):
    """(draws, p): the standard errors of the HC2-type M-estimator sandwich B⁻¹MB⁻¹, B = Σψ'd dᵀ, M = Σψ²/(1 - h)
    d dᵀ, h_i = ψ'_i d_iᵀB⁻¹d_i, for each row of ``y`` with its fit, from numpy's inverses."""
    out = []
    for target, b, s in zip(np.atleast_2d(y), beta, scale, strict=True):
        r = target - design @ b
        psi, slope = np.clip(r, -k * s, k * s), (np.abs(r) <= k * s).astype(float)
        bread_inverse = np.linalg.inv((design * slope[:, None]).T @ design)
        leverage = slope * np.einsum("ij,jk,ik->i", design, bread_inverse, design)
        meat = (design * (psi**2 / (1 - leverage))[:, None]).T @ design
        out.append(np.sqrt(np.diag(bread_inverse @ meat @ bread_inverse)))
    return np.array(out)


def refitted_wild_exceedances(design, y, j, b, v, k=1.345):
    """(#{draws with |t*| >= |t|}, |t|) of the wild restricted bootstrap test of β_j = b for Huber's M-estimate,
    restated with numpy: the Huber fit of y - b·x_j on the other columns, its residuals over √(1 - their
    least-squares leverages) times each draw's weights (``v``, draws x n) added to that fit, each draw refitted by
    Huber's M-estimate with its own MAD scale, its sandwich t about b."""
    beta, scale = huber_fits(design, y, k)
    t = abs(beta[0, j] - b) / huber_sandwich_errors(design, y, beta, scale, k)[0, j]
    others = np.delete(design, j, 1)
    restricted, _ = huber_fits(others, y - b * design[:, j], k)
    fitted = others @ restricted[0] + b * design[:, j]
    leverage = (np.linalg.qr(others)[0] ** 2).sum(1)
    draws = fitted + (y - fitted) / np.sqrt(1 - leverage) * v
    beta_star, scale_star = huber_fits(design, draws, k)
    t_star = np.abs(beta_star[:, j] - b) / huber_sandwich_errors(design, draws, beta_star, scale_star, k)[:, j]
    return int((t_star >= t).sum()), t


def assert_inverts_refitted_wild_test(design, y, lower, upper, p_values, std_errors, alpha, v, margin):
    """Each interval [lower_j, upper_j] ends where the refitted wild restricted bootstrap test of β_j = b starts to
    reject (1 + #{|t*| >= |t|} <= α(B + 1)), checked ``margin`` standard errors either side of each end, and each
    p-value is that test's at 0, (1 + count) / (B + 1)."""
    draws = len(v)
    rejects = int(np.floor(alpha * (draws + 1) + 1e-9))
    for j in range(design.shape[1]):
        count, _ = refitted_wild_exceedances(design, y, j, 0.0, v)
        assert p_values[j] == (1 + count) / (draws + 1), (j, p_values[j], count)
        for end, outward in ((lower[j], -1), (upper[j], 1)):
            for step, rejected in ((outward, True), (-outward, False)):
                count, _ = refitted_wild_exceedances(design, y, j, end + step * margin * std_errors[j], v)
                assert (1 + count <= rejects) == rejected, (j, end, step, count)
