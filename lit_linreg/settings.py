"""A checkpoint is the source of its run's settings: read it safely, refuse contradictions, take the rest from it.

``fit --ckpt_path`` (resume), ``validate``, ``test`` and ``predict`` all take the model's and the data's
settings from the checkpoint, so the same checkpoint gives the same numbers whatever config the command line
names. A model or data argument given on the command line (or in a config) that differs from the checkpoint is
refused in one line naming each difference. Arguments that only say which rows to read are allowed: for the
evaluating commands the table (``--data.path``, to measure other rows), ``--data.predict_path``,
``--data.delimiter``, ``--data.encoding``, ``--data.missing``, ``--data.memory_map``; trainer arguments are free
everywhere.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from lit_linreg.errors import UsageError

EVALUATING = ("validate", "test", "predict")
ROW_ARGUMENTS = {"path", "predict_path", "delimiter", "encoding", "missing", "memory_map", "cluster"}
RESUME_ROW_ARGUMENTS = {"predict_path", "delimiter", "encoding", "memory_map", "cluster"}  # cluster: the report's
# The model learns these from the data (links), and the data's columns are the checkpoint's when evaluating.
LINKED = {"n_features", "feature_names", "target"}
COLUMNS = {"target", "features", "categorical"}
# The model's tensors with one entry per feature.
PER_FEATURE = ("w", "x_mean", "x_scale", "w_average")


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
    if not isinstance(state, dict) or not {"w", "b"} <= set(state):
        raise UsageError(f"--ckpt_path {path} is not a lit_linreg checkpoint (it holds no w and b)")
    n_features = checkpoint.get("hyper_parameters", {}).get("n_features")
    shapes = {name: tuple(state[name].shape) for name in PER_FEATURE if isinstance(state.get(name), torch.Tensor)}
    if not isinstance(n_features, int) or any(shape != (n_features,) for shape in shapes.values()):
        found = ", ".join(f"{name} {list(shape)}" for name, shape in shapes.items())
        raise UsageError(
            f"--ckpt_path {path} does not hold one weight per feature ({n_features} features; {found}): it was "
            "damaged or edited"
        )
    return checkpoint


def take_settings(checkpoint: dict[str, Any], config, defaults, subcommand: str, path: str) -> None:
    """Refuses contradicting arguments, then fills ``config`` (the subcommand's) from the checkpoint, in place."""
    model = {k: v for k, v in checkpoint.get("hyper_parameters", {}).items() if not k.startswith("_")}
    data = {k: v for k, v in checkpoint.get("datamodule_hyper_parameters", {}).items() if not k.startswith("_")}
    evaluating = subcommand in EVALUATING
    allowed = ROW_ARGUMENTS if evaluating else RESUME_ROW_ARGUMENTS
    given_data = config.data.as_dict()
    default_data = defaults.data.as_dict()
    differences = []
    for key, saved in model.items():
        if key not in LINKED and _given(config.model, defaults.model, key, saved):
            differences.append(_difference(f"--model.{key}", config.model.get(key), saved))
    saved_table = data.get("path")
    for key in {*data, *given_data}:
        if key in allowed or (key in COLUMNS and evaluating and given_data.get(key) is None):
            continue
        given, default = given_data.get(key), default_data.get(key)
        if key in data and given != default and not _same(key, given, data[key]):
            name = "--seed_everything" if key == "seed" else f"--data.{key}"
            differences.append(_difference(name, given, data[key]))
        elif key not in data and given != default and not (key == "path" and evaluating):
            kind = "a table" if saved_table else "the planted data"
            differences.append(f"--data.{key} {given} (the checkpoint was trained on {kind})")
    if differences:
        raise UsageError(
            f"--ckpt_path {path} was trained with other settings: {'; '.join(sorted(differences))}. Leave them "
            "out: the checkpoint's settings are used" + ("" if evaluating else " to resume (trainer ones may change)")
        )
    for key, saved in data.items():
        if key not in allowed or given_data.get(key) in (None, default_data.get(key)):
            config.data[key] = saved
    if evaluating and given_data.get("path") and given_data["path"] != saved_table:
        config.data["path"] = given_data["path"]  # other rows to measure, with the model's columns
        config.data["val_fraction"] = 0.0
        if saved_table is None:
            config.data["target"], config.data["features"] = model.get("target"), model.get("feature_names")
            config.data["categorical"] = {}
    if evaluating:  # validate and test measure unweighted, predict needs neither: the columns need not be there
        config.data["weights"] = config.data["cluster"] = None
    if "seed" in data:
        config["seed_everything"] = data["seed"]


def _given(section, defaults, key: str, saved: Any) -> bool:
    value = section.get(key)
    return value != defaults.get(key) and not _same(key, value, saved)


def _same(key: str, given: Any, saved: Any) -> bool:
    """Whether an argument as given means the checkpoint's value (one feature name is a list of one)."""
    if key in ("features", "categorical") and isinstance(given, str):
        given = [given]
    if key == "categorical" and isinstance(saved, dict):
        return set(given.keys() if isinstance(given, dict) else given or []) == set(saved) and (
            not isinstance(given, dict) or all(list(given[k]) == list(saved[k]) for k in saved)
        )
    if isinstance(given, list | tuple) and isinstance(saved, list | tuple):
        return list(given) == list(saved)
    return given == saved


def _difference(name: str, given: Any, saved: Any) -> str:
    return f"{name} {given} (checkpoint: {saved})"
