"""Every `restyle ...` example in README.md and docs/*.md works as written, offline.

Each example line of a shell block is parsed by the real `restyle` parser (a renamed option or command fails here).
Then, in a scratch folder holding the files the examples name (loop.wav, take1.wav, clips/accordion/...), with
$RESTYLE_HOME private and the network off, they are run in document order on the shipped mini model, with these
changes only, each needed to run offline and in seconds:
- a command that would load Riffusion (the default base model) gets `--model mini`;
- `train` gets `--steps 2`, `evaluate` gets `--clap tiny` (CLAP's weights cannot be downloaded here);
- the client commands (`send`, `status`, `learn`, `cancel`) reach a `restyle serve --model mini` started by the
  test, over OSC or (for `--server URL`) over its HTTP API;
- `serve` and `studio` examples are checked as they check their options before loading a model (the network
  interfaces, MIDI ports, Ray clusters and GPUs they name do not exist here, and both run until stopped);
- `mini train | styles | acceptance` (hours of rendering and training) are parsed only.
Each page starts with an empty library of your own, as a reader following that page would.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from restyle.cli import build_parser, main
from signals import chord
from tests.bridge_helpers import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CLIENT = {"send", "status", "learn", "cancel"}
LOADS_RIFFUSION = {"train", "export-onnx"}


def examples() -> list[tuple[str, list[str]]]:
    """(where, argv after `restyle`) for every example line, in document order."""
    found = []
    for doc in DOCS:
        for block in re.findall(r"```(?:sh|bash|shell)?\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.strip()
                if line.startswith("restyle "):
                    argv = shlex.split(line, comments=True)[1:]
                    found.append((f"{doc.name}: {line.split('  #')[0].strip()}", argv))
    return found


EXAMPLES = examples()


@pytest.mark.parametrize("where,argv", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_every_example_parses(where, argv):
    parser, _ = build_parser()
    try:
        parser.parse_args([os.path.expanduser(a) for a in argv])
    except SystemExit:
        pytest.fail(f"{where}: the parser refuses it")


def _wav(path: Path, seconds: float, rate: int = 44100, channels: int = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mono = chord([196.0, 246.9, 293.7], seconds, rate) * 2.0
    sf.write(path, np.stack([mono] * channels, axis=1), rate)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The files the examples name, a private home, and a running server on mini (OSC and HTTP)."""
    root = tmp_path_factory.mktemp("examples")
    home = root / "home"
    for name, seconds in (("loop.wav", 2.0), ("take1.wav", 13.0), ("a.wav", 1.5), ("b.wav", 1.5),
                          ("clips/accordion/one.wav", 1.5), ("clips/accordion/two.wav", 1.5),
                          ("clips/keys.wav", 1.0), ("accordion-clips/one.wav", 1.5), ("out/keys_accordion.wav", 1.0),
                          ("home/clips/accordion/one.wav", 1.5)):
        _wav(root / name, seconds)
    (root / "pairs.csv").write_text("content,stylized\nkeys.wav,keys_accordion.wav\n")
    (root / "home" / "restyle-token").write_text("a-token-the-loopback-server-does-not-need\n")
    env = dict(os.environ, HF_HUB_OFFLINE="1", RESTYLE_HOME=str(root / "restyle-home"), HOME=str(home))
    osc, http = free_port(), free_port()
    server = subprocess.Popen([sys.executable, "-m", "restyle", "serve", "--model", "mini", "--style", "accordion",
                               "--port", str(osc), "--http", str(http), "--learn-steps", "2"],
                              cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert "listening" in server.stdout.readline()
        yield {"root": root, "env": env, "osc": osc, "http": http}
    finally:
        server.terminate()
        server.wait(60)


def _rewrite(argv: list[str], w: dict) -> list[str]:
    argv = [os.path.expanduser(a).replace(str(Path.home()), str(w["root"] / "home")) for a in argv]
    command = argv[0]
    if command in LOADS_RIFFUSION and "--model" not in argv:
        argv += ["--model", "mini"]
    if command == "train":
        argv += ["--steps", "2"]
    if command == "evaluate":
        argv += ["--clap", "tiny"]
    if command in CLIENT:
        if "--server" in argv:
            argv[argv.index("--server") + 1] = f"http://127.0.0.1:{w['http']}"
        else:
            argv += ["--port", str(w["osc"])]
    return argv


def test_every_example_runs(world, monkeypatch, capsys):
    from restyle.bridge.commands import check_serve_options, check_studio_options
    from restyle.cli import build_parser as parser_and_handlers

    monkeypatch.chdir(world["root"])
    for key in ("RESTYLE_HOME", "HOME"):
        monkeypatch.setenv(key, world["env"][key])
    servers = {"serve": check_serve_options, "studio": check_studio_options}
    failures, page = [], None
    for where, argv in EXAMPLES:
        if where.split(":")[0] != page:  # each page starts from an empty library of your own, as a reader would
            page = where.split(":")[0]
            shutil.rmtree(Path(world["env"]["RESTYLE_HOME"]) / "styles", ignore_errors=True)
        argv = _rewrite(argv, world)
        if argv[0] == "mini":
            continue  # parsed above; hours of work
        if argv[0] in servers:
            args = parser_and_handlers()[0].parse_args(argv)
            try:
                servers[argv[0]](args)
            except Exception as exc:  # noqa: BLE001 (reported with its example)
                failures.append(f"{where}: {exc}")
            continue
        started = time.monotonic()
        code = main(argv)
        err = capsys.readouterr().err
        if code != 0:
            failures.append(f"{where}: exit {code}: {err.strip().splitlines()[-1] if err.strip() else ''}")
        assert time.monotonic() - started < 300, where
    assert not failures, "\n".join(failures)
