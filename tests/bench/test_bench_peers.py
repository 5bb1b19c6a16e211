"""bench.peers: the MBDP bench installs missing peer programs once, as `make bench-peers` does, and says
why when it cannot. Programs and apt-get are stand-ins here: no test touches the network."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import peers

PLUGIN = "http://lsp-plug.in/plugins/lv2/mb_compressor_mono"


class FakeSystem:
    """PATH and apt-get as a test sets them: installing puts every peer program and the plugin there."""

    def __init__(self, present=(), apt_ok=True, has_apt=True):
        self.present, self.apt_ok, self.has_apt = set(present), apt_ok, has_apt
        self.commands: list[list[str]] = []

    def which(self, name):
        return f"/usr/bin/{name}" if name in self.present or (name == "apt-get" and self.has_apt) else None

    def run(self, cmd, **kwargs):
        if cmd == ["lv2ls"]:
            return subprocess.CompletedProcess(cmd, 0, stdout=PLUGIN if "plugin" in self.present else "")
        self.commands.append(cmd)
        if not self.apt_ok:
            return subprocess.CompletedProcess(cmd, 100, stdout="", stderr="E: Unable to locate package sox")
        if cmd[:2] == ["apt-get", "install"]:
            self.present |= {"sox", "lv2apply", "lv2ls", "plugin"}
        return subprocess.CompletedProcess(cmd, 0, stdout="", stderr="")


@pytest.fixture(autouse=True)
def _fresh_process(monkeypatch):
    monkeypatch.setattr(peers, "_tried", None)


def test_the_install_commands_are_make_bench_peers():
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(makefile) if line.startswith("bench-peers:"))
    recipe = [line.strip().split() for line in makefile[start + 1 :] if line.startswith("\t")]
    assert [tuple(r) for r in recipe[: len(peers.INSTALL_COMMANDS)]] == list(peers.INSTALL_COMMANDS)


def test_missing_peers_are_installed_once_per_process():
    system, said = FakeSystem(present={"sox"}), []
    out = peers.ensure_peers(PLUGIN, system.which, system.run, said.append)
    assert out == {"missing": ["lv2apply", "lv2ls"], "installed": True, "error": None}
    assert system.commands == [list(c) for c in peers.INSTALL_COMMANDS]
    assert "apt-get install -y -q sox lsp-plugins-lv2 lilv-utils" in said[0]
    assert peers.ensure_peers(PLUGIN, system.which, system.run, said.append)["missing"] == []
    assert len(system.commands) == 2


def test_nothing_is_run_when_every_peer_is_there():
    system = FakeSystem(present={"sox", "lv2apply", "lv2ls", "plugin"})
    assert peers.ensure_peers(PLUGIN, system.which, system.run, print)["error"] is None
    assert system.commands == []


def test_a_missing_plugin_counts_as_missing():
    system = FakeSystem(present={"sox", "lv2apply", "lv2ls"})
    assert peers.missing_peers(PLUGIN, system.which, system.run) == [PLUGIN]


def test_a_failed_install_is_tried_once_and_says_why():
    system, said = FakeSystem(apt_ok=False), []
    first = peers.ensure_peers(PLUGIN, system.which, system.run, said.append)
    assert not first["installed"] and "`apt-get update -q` exited 100" in first["error"]
    assert "Unable to locate package" in first["error"] and first["error"] in said[-1]
    assert peers.ensure_peers(PLUGIN, system.which, system.run, said.append) == first
    assert len(system.commands) == 1


def test_without_apt_get_or_root_it_says_what_to_do(monkeypatch):
    no_apt = FakeSystem(has_apt=False)
    assert "no apt-get" in peers.ensure_peers(PLUGIN, no_apt.which, no_apt.run, print)["error"]
    monkeypatch.setattr(peers, "_tried", None)
    monkeypatch.setattr(peers.os, "geteuid", lambda: 1000)
    user = FakeSystem()
    assert "sudo make bench-peers" in peers.ensure_peers(PLUGIN, user.which, user.run, print)["error"]
    assert user.commands == []


def test_a_peer_still_missing_is_skipped_with_the_reason(monkeypatch):
    import numpy as np

    from bench import mbdp

    monkeypatch.setattr(mbdp.shutil, "which", lambda name: None)
    out = mbdp.sox_peer({}, 48000.0, np.zeros(10), why="no apt-get here")
    assert out == {"skipped": "sox not installed (no apt-get here)"}
    assert mbdp.lsp_peer({}, 48000.0)["skipped"] == "lv2apply (lilv-utils) not installed"
