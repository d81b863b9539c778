"""Denoiser weights (safetensors) and the resumable training state, both written atomically.

``denoiser.safetensors`` holds the state dict of :class:`EDMPrecond` (float32) and, in the
safetensors metadata, ``"config"``: the JSON of the build description from
:func:`diffad.components.denoiser.unet.build_denoiser` (preset, resolution, channels, sigma_data, dropout,
arch) plus whatever the caller adds (the training parameters). :func:`load_denoiser` rebuilds the
net from ``arch``, so a file stays loadable when a preset's definition changes later.

The training state (``checkpoint/state.pt``) is a dict of tensors, numbers and strings saved with
``torch.save`` and read back with ``torch.load(weights_only=True)``: no pickled code. A sha256
beside it (``state.pt.sha256``) is checked before loading, so a corrupted state is never resumed.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from diffad.components.denoiser.precond import EDMPrecond
from diffad.components.denoiser.unet import build_denoiser, denoiser_config, spec_from_dict
from diffad.core.errors import ArtifactError
from diffad.core.files import atomic_write, save_safetensors

CONFIG_KEY = "config"  # safetensors metadata key of the build description


def save_denoiser(path: str | Path, denoiser: EDMPrecond, extra: dict[str, Any] | None = None) -> Path:
    """Write ``denoiser``'s weights and build description (+ ``extra``) to ``path`` atomically."""
    config = {**denoiser_config(denoiser), **(extra or {})}
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in denoiser.state_dict().items()}
    metadata = {CONFIG_KEY: json.dumps(config)}
    return save_safetensors(Path(path), tensors, metadata)


def read_denoiser_config(path: str | Path) -> dict[str, Any]:
    """The ``"config"`` metadata of a denoiser file, without loading its tensors."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: denoiser weights not found; run the train_denoiser stage first")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        return json.loads(metadata[CONFIG_KEY])
    except (SafetensorError, OSError) as exc:
        raise ArtifactError(f"{path}: not a readable safetensors file ({exc})") from None
    except (KeyError, json.JSONDecodeError):
        raise ArtifactError(
            f"{path}: no valid {CONFIG_KEY!r} metadata; not written by save_denoiser"
        ) from None


def load_denoiser(path: str | Path, device: str | torch.device = "cpu") -> EDMPrecond:
    """Rebuild the denoiser saved at ``path`` on ``device``, in eval mode.

    Raises :class:`ArtifactError` naming ``path`` when it is missing, corrupt or does not match
    the architecture in its metadata.
    """
    path = Path(path)
    config = read_denoiser_config(path)
    try:
        denoiser = build_denoiser(
            spec_from_dict(config["arch"]),
            config["resolution"],
            channels=config["channels"],
            sigma_data=config["sigma_data"],
            dropout=config.get("dropout", 0.0),
        )
        denoiser.config["preset"] = config["preset"]
        with safe_open(str(path), framework="pt") as f:
            state = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - safe_open has no iter
        denoiser.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{path}: build description in the metadata is invalid ({exc})") from None
    except (SafetensorError, OSError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0]
        raise ArtifactError(f"{path}: weights cannot be loaded ({reason})") from None
    return denoiser.to(device).eval()


def save_state(path: str | Path, state: dict[str, Any]) -> Path:
    """``torch.save`` a training state (tensors, numbers, strings, nested dicts/lists) atomically.

    Its sha256 goes to ``<path>.sha256`` (written after it), so :func:`load_state` can refuse a
    corrupted file that ``torch.load`` would still read (a flipped bit in a tensor).
    """
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
    atomic_write(checksum_path(path), lambda tmp: tmp.write_text(hashlib.sha256(data).hexdigest() + "\n"))
    return path


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a training state written by :func:`save_state` (checksum verified, ``weights_only=True``)."""
    path = Path(path)
    try:
        data = path.read_bytes()
        expected = checksum_path(path).read_text().strip()
    except OSError as exc:
        raise ArtifactError(f"{path}: training state or its checksum cannot be read ({exc})") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise ArtifactError(f"{path}: checksum mismatch with {checksum_path(path).name}; the file is corrupt")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ArtifactError(f"{path}: training state cannot be read ({reason})") from None
    if not isinstance(state, dict):
        raise ArtifactError(f"{path}: expected a dict of training state, got {type(state).__name__}")
    return state
