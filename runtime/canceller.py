"""Music-distortion canceller: project the direct-path spatial signature out across microphones,
in the time-frequency bins where the energy carries that signature.

Playback distortion (bass phase-modulating the carrier in the loudspeaker) leaves the speaker
with the emission, so each microphone receives it through the same static channel as the carrier
itself: across mics it is a multiple of the static (clutter) estimate u. Projecting a bin's
mic vector X onto the orthogonal complement of u removes the distortion; an echo from another
direction a keeps the part of its energy orthogonal to u, 1 - |u^H a|^2 of it.

On a small array at 40 kHz (4 mics on a 3.5 cm circle: about 8 wavelengths round) the array is
spatially aliased: echoes from some directions overlap the direct path heavily (90 degrees off
it: |u^H a|^2 = cos^2(kr), about 0.8; a grating lobe near 100 degrees: almost 1). Projecting every
bin throws that part away even when no music plays. So the projection is gated per bin
(adaptive): a bin is projected only when its power along u exceeds the power orthogonal to u by
more than `gate_db`. Distortion bins carry the direct path's signature up to the room's delayed
copies (the direct-to-room ratio, about 20 dB on speaker4), so they are projected; an echo from
30 degrees or more off the direct path stays below the gate except near the grating lobes (its
ratio is |u^H a|^2 / (1 - |u^H a|^2)), so it passes whole. With two microphones the complement
is one channel and cannot tell an echo from distortion whose room copies are only 3-9 dB down
(display2), so two-mic arrays project every bin (plain rank-one canceller), as does a gate_db at
or below MIN_GATE_DB. With one microphone there is nothing to project against: the canceller
passes through and says so in describe().
Assumes the direct path dominates the static estimate (true whenever the device emits: it is
tens of dB above any echo); with no emission the signature is whatever is static.
"""

from __future__ import annotations

import numpy as np

_MIN_NORM = 1e-30
MIN_GATE_DB = -100.0  # gate_db at or below this: every bin is projected (no gate)
MIN_GATED_MICS = 3  # fewer microphones: every bin is projected


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
    unit = _silent_to_e0(unit).astype(np.complex128)
    w = unit.copy()
    w[:, 0] -= np.exp(1j * np.angle(unit[:, 0]))
    w_norm2 = np.sum(np.abs(w) ** 2, axis=1)  # [F]
    scale = np.where(w_norm2 > 1e-20, 2.0 / np.maximum(w_norm2, 1e-20), 0.0)
    householder = np.eye(n_mics)[None] - scale[:, None, None] * w[:, :, None] * w.conj()[:, None, :]
    return householder[:, 1:, :].astype(np.complex64)


def _silent_to_e0(unit: np.ndarray) -> np.ndarray:
    """unit [F, M] with silent frames (u = 0) replaced by e_0 (the complement is then mics 1..M-1)."""
    silent = np.sum(unit.real**2 + unit.imag**2, axis=1) < 0.5
    if not silent.any():
        return unit
    unit = unit.copy()
    unit[silent] = np.eye(unit.shape[1], dtype=unit.dtype)[0]
    return unit


def bin_powers(spectra: np.ndarray, unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin power orthogonal to and along each frame's signature.

    spectra [F, M, B] complex64 (one spectrum per mic), unit [F, M] -> (p_perp [F, B], p_along [F, B])
    float32 with p_perp + p_along = sum over mics of |X|^2. The orthogonal part is the power of the
    M-1 complement channels Q^H X (complement_basis), not a difference of powers, so it keeps full
    precision when the distortion along u is 80 dB above what is left.
    """
    unit = _silent_to_e0(np.asarray(unit, np.complex64))
    coeff = np.matmul(unit.conj()[:, None, :], spectra)  # u^H X  [F, 1, B]
    perp = np.matmul(complement_basis(unit), spectra)  # Q^H X  [F, M-1, B]: |Q^H X|^2 = |X - u u^H X|^2
    return power_sum(perp), power_sum(coeff)


def power_sum(spectra: np.ndarray) -> np.ndarray:
    """sum over axis 1 of |spectra|^2: [F, M, B] complex64 -> [F, B] float32 (spectra is overwritten)."""
    pairs = spectra.view(np.float32)  # [F, M, 2B]: re, im interleaved
    np.square(pairs, out=pairs)
    summed = pairs[:, 0].copy() if pairs.shape[1] == 1 else np.add(pairs[:, 0], pairs[:, 1])
    for m in range(2, pairs.shape[1]):
        summed += pairs[:, m]
    return np.add(summed[:, 0::2], summed[:, 1::2])


class DirectPathCanceller:
    """Direct-path projection (per frame signature), gated per time-frequency bin; describe() says how."""

    def __init__(self, n_mics: int, enabled: bool = True, gate_db: float = MIN_GATE_DB):
        self.n_mics = n_mics
        self.requested = enabled
        self.active = enabled and n_mics > 1
        self.gate_db = float(gate_db)
        self.gated = self.active and n_mics >= MIN_GATED_MICS and self.gate_db > MIN_GATE_DB
        self._gate_ratio = 10.0 ** (self.gate_db / 10.0) if self.gated else 0.0

    def describe(self) -> dict:
        if not self.requested:
            state = "off: disabled in config"
        elif self.n_mics == 1:
            state = "bypassed: single microphone"
        elif self.gated:
            state = (
                f"active: direct-path projection over {self.n_mics} microphones in the time-frequency "
                f"bins whose power along the direct-path signature is more than {self.gate_db:g} dB "
                "above the orthogonal power"
            )
        else:
            why = "two microphones" if self.n_mics < MIN_GATED_MICS else "gate off"
            state = (
                f"active: rank-one direct-path projection over {self.n_mics} microphones, every bin ({why})"
            )
        return {"canceller": state, "n_mics": self.n_mics, "active": self.active, "gated": self.gated}

    def keep_along(self, p_perp: np.ndarray, p_along: np.ndarray) -> np.ndarray:
        """Bins [F, B] whose power along the signature passes (True) rather than being projected out."""
        if not self.active:
            return np.ones(p_along.shape, bool)
        if not self.gated:
            return np.zeros(p_along.shape, bool)
        return p_along <= self._gate_ratio * p_perp

    def combine(self, p_perp: np.ndarray, p_along: np.ndarray) -> np.ndarray:
        """Bin power [F, B] after the canceller: orthogonal power, plus the along power where it passes."""
        if not self.active:
            return p_perp + p_along
        if not self.gated:
            return p_perp
        return np.where(self.keep_along(p_perp, p_along), p_perp + p_along, p_perp)

    def cancel_frames(self, frames: np.ndarray, static: np.ndarray) -> np.ndarray:
        """Ungated projection: frames [F, n_mics, L] clutter-removed, static [F, n_mics] -> [F, n_mics, L]."""
        if not self.active:
            return frames
        return project_out(frames, signature(static))

    def basis(self, static: np.ndarray) -> np.ndarray | None:
        """static [F, M] -> Q^H [F, M-1, M] (rows orthogonal to each frame's signature); None if inactive."""
        return complement_basis(signature(static)) if self.active else None

    def complement_frames(self, frames: np.ndarray, static: np.ndarray) -> np.ndarray:
        """Ungated: frames [F, M, L], static [F, M] -> channels [F, M-1, L] whose summed power is that
        of the projected frames (or the frames unchanged when inactive)."""
        basis = self.basis(static)
        return frames if basis is None else basis @ frames

    def cancel_samples(self, residual: np.ndarray, static: np.ndarray) -> np.ndarray:
        """Ungated per-sample projection: residual, static [n_mics, n] -> [n_mics, n]."""
        if not self.active:
            return residual
        unit = signature(static.T)  # [n, n_mics]
        return project_out(residual.T[:, :, None], unit)[:, :, 0].T
