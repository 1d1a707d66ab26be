"""Checkpoints given on the command line: checked before Lightning reads them, so mistakes get one clear line."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from lit_linreg.errors import UsageError


def read_checkpoint(path: str) -> dict[str, Any]:
    """Loads a lit_linreg checkpoint safely (``weights_only=True``: plain types only, no code runs)."""
    if not Path(path).is_file():
        raise UsageError(f"--ckpt_path {path}: no such file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UsageError(
            f"--ckpt_path {path} is not a torch checkpoint, or holds objects that are unsafe to load"
        ) from None
    except Exception as err:  # torch.load raises many types for truncated or corrupt files
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UsageError(f"--ckpt_path {path} is not a readable checkpoint ({reason[:120]})") from None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or set(state) != {"w", "b"}:
        raise UsageError(f"--ckpt_path {path} is not a lit_linreg checkpoint (it holds no w and b)")
    return checkpoint


def check_resume(checkpoint: dict[str, Any], config: dict[str, Any], path: str) -> None:
    """Refuses to resume a fit with hyperparameters other than the checkpoint's.

    Lightning would let the checkpoint's model hyperparameters override the command line silently, and would
    use the command line's data arguments: either way the resumed run would not be the run that was saved.
    """
    saved = {
        "model": checkpoint.get("hyper_parameters", {}),
        "data": checkpoint.get("datamodule_hyper_parameters", {}),
    }
    given = {
        "model": config.get("model") or {},
        "data": {**(config.get("data") or {}), "seed": config.get("seed_everything")},
    }
    differences = [
        f"--{'seed_everything' if key == 'seed' else f'{section}.{key}'} {given[section][key]} (checkpoint: {value})"
        for section in ("model", "data")
        for key, value in saved[section].items()
        if key in given[section] and given[section][key] != value
    ]
    if differences:
        raise UsageError(
            f"--ckpt_path {path} was trained with other settings than this run: {'; '.join(differences)}. "
            "Resume with the checkpoint's settings (its config.yaml), or start a new run without --ckpt_path"
        )
