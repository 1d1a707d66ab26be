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
