"""Music-distortion canceller: project the direct-path spatial signature out across microphones.

Playback distortion (bass phase-modulating the carrier in the loudspeaker) leaves the speaker
with the emission, so each microphone receives it through the same static channel as the carrier
itself: across mics it is a multiple of the static (clutter) estimate. Projecting every sample
vector onto the orthogonal complement of that normalised signature removes the distortion, while
echoes arriving from other directions keep the part of their energy orthogonal to it.
With one microphone there is nothing to project against: the canceller passes through.
Assumes the direct path dominates the static estimate (true whenever the device emits: it is
tens of dB above any echo); with no emission the signature is whatever is static, and the
projection then costs about 1/n_mics of the remaining power.
"""

from __future__ import annotations

import numpy as np

_MIN_NORM = 1e-30


def signature(static: np.ndarray) -> np.ndarray:
    """Unit-norm spatial signature along the mic axis (-1) of static [..., n_mics]; 0 where silent."""
    norm = np.sqrt(np.sum(static.real**2 + static.imag**2, axis=-1, keepdims=True))
    return np.where(norm > _MIN_NORM, static / np.maximum(norm, _MIN_NORM), 0).astype(np.complex64)


def project_out(x: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """Remove the component along unit [..., n_mics] from x [..., n_mics, L] (L samples share it)."""
    coeff = np.einsum("...m,...ml->...l", unit.conj(), x)  # [..., L]
    return x - unit[..., :, None] * coeff[..., None, :]


def complement_basis(unit: np.ndarray) -> np.ndarray:
    """Rows spanning the orthogonal complement of unit [F, M]: Q^H [F, M-1, M] (Householder).

    H = I - 2 w w^H / |w|^2 with w = u - e^{j arg u_0} e_0 maps u onto e_0, so rows 1..M-1 of the
    unitary H are an orthonormal basis of the complement, and sum_j |(Q^H x)_j|^2 equals
    |x|^2 - |u^H x|^2: the power of x with u projected out, from M-1 channels instead of M.
    Silent frames (u = 0) fall back to u = e_0.
    """
    n_mics = unit.shape[1]
    unit = unit.astype(np.complex128)
    silent = np.sum(np.abs(unit) ** 2, axis=1) < 0.5
    unit[silent] = np.eye(n_mics)[0]
    w = unit.copy()
    w[:, 0] -= np.exp(1j * np.angle(unit[:, 0]))
    w_norm2 = np.sum(np.abs(w) ** 2, axis=1)  # [F]
    scale = np.where(w_norm2 > 1e-20, 2.0 / np.maximum(w_norm2, 1e-20), 0.0)
    householder = np.eye(n_mics)[None] - scale[:, None, None] * w[:, :, None] * w.conj()[:, None, :]
    return householder[:, 1:, :].astype(np.complex64)


class DirectPathCanceller:
    """Per-block projection; describe() says whether it is active."""

    def __init__(self, n_mics: int, enabled: bool = True):
        self.n_mics = n_mics
        self.requested = enabled
        self.active = enabled and n_mics > 1

    def describe(self) -> dict:
        if not self.requested:
            state = "off: disabled in config"
        elif self.n_mics == 1:
            state = "bypassed: single microphone"
        else:
            state = f"active: rank-one direct-path projection over {self.n_mics} microphones"
        return {"canceller": state, "n_mics": self.n_mics, "active": self.active}

    def cancel_frames(self, frames: np.ndarray, static: np.ndarray) -> np.ndarray:
        """frames [F, n_mics, L] clutter-removed, static [F, n_mics] estimate -> [F, n_mics, L]."""
        if not self.active:
            return frames
        return project_out(frames, signature(static))

    def basis(self, static: np.ndarray) -> np.ndarray | None:
        """static [F, M] -> Q^H [F, M-1, M] (rows orthogonal to each frame's signature); None if inactive."""
        return complement_basis(signature(static)) if self.active else None

    def complement_frames(self, frames: np.ndarray, static: np.ndarray) -> np.ndarray:
        """frames [F, M, L], static [F, M] -> channels [F, M-1, L] whose summed power is that of
        the projected frames (or the frames unchanged when inactive)."""
        basis = self.basis(static)
        return frames if basis is None else basis @ frames

    def cancel_samples(self, residual: np.ndarray, static: np.ndarray) -> np.ndarray:
        """Per-sample projection: residual, static [n_mics, n] -> [n_mics, n]."""
        if not self.active:
            return residual
        unit = signature(static.T)  # [n, n_mics]
        return project_out(residual.T[:, :, None], unit)[:, :, 0].T
