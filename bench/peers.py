"""The external programs `flywheel bench mbdp` measures beside the MBDP: sox (`mcompand`) and the LSP
multiband compressor run through lv2apply (lilv-utils). Missing ones are installed once per process
with Debian's packages, by the same commands as `make bench-peers` (tests/bench/test_bench_peers.py
holds the two together); where that cannot work (no apt-get, not root, no package index reachable) the
result says why, and the bench reports the peer as skipped with that reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

PACKAGES = ("sox", "lsp-plugins-lv2", "lilv-utils")
INSTALL_COMMANDS = (  # `make bench-peers`
    ("apt-get", "update", "-q"),
    ("apt-get", "install", "-y", "-q", *PACKAGES),
)
PROGRAMS = ("sox", "lv2apply", "lv2ls")  # lv2ls: whether the LSP plugin is installed
TIMEOUT_S = 600

_tried: dict | None = None  # this process's one install attempt


def missing_peers(
    lsp_plugin: str, which: Callable = shutil.which, run: Callable = subprocess.run
) -> list[str]:
    """The peer programs (and the LSP plugin, by its URI) not installed here."""
    missing = [p for p in PROGRAMS if which(p) is None]
    if "lv2ls" not in missing:
        listed = run(["lv2ls"], capture_output=True, text=True, timeout=60, check=False).stdout.split()
        if lsp_plugin not in listed:
            missing.append(lsp_plugin)
    return missing


def ensure_peers(
    lsp_plugin: str,
    which: Callable = shutil.which,
    run: Callable = subprocess.run,
    say: Callable[[str], None] = print,
) -> dict:
    """Install the peers when any is missing, once per process: {"missing": what was missing before,
    "installed": whether the install ran and left nothing missing, "error": why the peers are still
    missing (None when none is)}. `say` tells the user what happens."""
    global _tried
    missing = missing_peers(lsp_plugin, which, run)
    if not missing:
        return {"missing": [], "installed": False, "error": None}
    if _tried is None:
        say(f"bench peers missing ({', '.join(missing)}): {_shell()}")
        error = _install(which, run)
        left = missing_peers(lsp_plugin, which, run) if error is None else missing
        if error is None and left:
            error = f"still missing after `{_shell()}`: {', '.join(left)}"
        _tried = {"missing": missing, "installed": error is None, "error": error}
        say(f"bench peers installed ({', '.join(PACKAGES)})" if error is None else f"bench peers: {error}")
    return _tried


def _shell() -> str:
    return " && ".join(" ".join(c) for c in INSTALL_COMMANDS)


def _install(which: Callable, run: Callable) -> str | None:
    """None when the install commands ran and succeeded, else why not."""
    if which("apt-get") is None:
        return f"no apt-get here: install {', '.join(PACKAGES)} yourself"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return f"not root: run `sudo make bench-peers` ({_shell()})"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in INSTALL_COMMANDS:
        try:
            done = run(list(cmd), capture_output=True, text=True, timeout=TIMEOUT_S, check=False, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`{' '.join(cmd)}` failed: {type(exc).__name__}: {exc}"[:300]
        if done.returncode != 0:
            tail = (done.stderr or done.stdout or "").strip().splitlines()[-1:] or [""]
            return f"`{' '.join(cmd)}` exited {done.returncode}: {tail[0]}"[:300]
    return None
