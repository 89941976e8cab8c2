"""The studio in a real headless browser (Debian's chromium driven by Playwright) on the tiny model: learn a style
from uploaded clips, stylize a clip and download it, one-line errors, cancel and resume; screenshots of each view."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import shutil
from pathlib import Path
from urllib.parse import urljoin

import httpx
import numpy as np
import pytest
import soundfile as sf

from restyle.bridge.knobs import Knobs
from restyle.bridge.protocol import RestyleProtocol
from restyle.engine import Engine, SamplerSettings, StyleLibrary
from signals import bells, chord

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync"]
SIZES = {"1280x800": (1280, 800), "800x600": (800, 600)}
TIMEOUT_MS = 120_000

pytestmark = pytest.mark.slow
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        raise RuntimeError("CI must install Debian's chromium (.ci/run does) for the studio's browser tests.")
    pytest.skip("Debian's chromium is not installed (apt-get install chromium); CI installs it.",
                allow_module_level=True)


@pytest.fixture(scope="module")
def studio(tiny_base, styles_dir, tmp_path_factory):
    """The studio (and HTTP API) on a free loopback port, the tiny model, a private copy of the test library."""
    from restyle.bridge.studio import open_studio

    work = tmp_path_factory.mktemp("studio")
    old_home = os.environ.get("RESTYLE_HOME")
    os.environ["RESTYLE_HOME"] = str(work / "home")
    shutil.copytree(styles_dir, work / "styles")
    engine = Engine(tiny_base, StyleLibrary(work / "styles"))
    protocol = RestyleProtocol(engine, Knobs(settings=SamplerSettings(strength=0.5, scale=4.0, steps=4)),
                               learn_steps=3)
    protocol.start()
    server, url, _access = open_studio(protocol, "127.0.0.1", 0, [])
    try:
        yield url, engine, work
    finally:
        server.stop()
        protocol.stop()
        if old_home is None:
            os.environ.pop("RESTYLE_HOME", None)
        else:
            os.environ["RESTYLE_HOME"] = old_home


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, studio):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    tab.goto(studio[0])
    tab.wait_for_selector("#stylize")
    yield tab
    context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where the screenshots go (RESTYLE_STUDIO_SHOTS names a folder to keep them)."""
    folder = os.environ.get("RESTYLE_STUDIO_SHOTS")
    return Path(folder) if folder else tmp_path_factory.mktemp("screenshots")


def wav(path: Path, seconds: float, rate: int, channels: int) -> Path:
    mono = chord([220.0, 277.2, 329.6], seconds, rate) * 2.0
    data = np.stack([mono * (0.6 + 0.4 * c) for c in range(channels)], axis=1) if channels > 1 else mono
    sf.write(str(path), data, rate, subtype="PCM_16")
    return path


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def upload(page, elem_id: str, files: list[Path]) -> None:
    """Drop files on a Gradio file or audio input and wait until the page shows them."""
    page.locator(f"#{elem_id} input[type=file]").set_input_files([str(f) for f in files])
    if elem_id == "content":  # an audio input shows a player once the upload is in
        page.wait_for_function("() => !document.querySelector('#content').innerText.includes('Drop Audio')")
    else:
        page.locator(f"#{elem_id}").get_by_text(files[-1].stem).first.wait_for()


def set_field(page, elem_id: str, value: object) -> None:
    field = page.locator(f"#{elem_id} input, #{elem_id} textarea").first
    field.fill(str(value))
    field.evaluate("(e) => e.blur()")  # Gradio takes the value on change; Tab would open the next dropdown


def status_text(page, elem_id: str, contains: str) -> str:
    """Wait until a status line contains ``contains``; return its text."""
    locator = page.locator(f"#{elem_id}")
    locator.get_by_text(contains).first.wait_for()
    return locator.inner_text()


def screenshot_views(page, shots: Path, state: str) -> None:
    page.keyboard.press("Escape")
    page.locator("h2").first.click()  # close any open dropdown list
    for size, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        for view in ("Audition", "Learn", "Library"):
            open_tab(page, view)
            page.wait_for_timeout(300)
            page.screenshot(path=str(shots / f"{state}-{view.lower()}-{size}.png"))
    page.set_viewport_size({"width": 1280, "height": 800})


def test_learn_a_style_from_two_uploaded_clips(page, studio, tmp_path):
    _url, engine, _work = studio
    clips = []
    for i, notes in enumerate(([880.0, 660.0], [523.0, 784.0])):
        clips.append(tmp_path / f"bell-{i}.wav")
        sf.write(str(clips[-1]), bells(notes, 1.0, 22050, seed=i), 22050)
    open_tab(page, "Learn")
    upload(page, "clips", clips)
    set_field(page, "style-name", "brass")
    set_field(page, "steps", 3)
    page.click("#preset input")
    page.get_by_role("option", name="accordion", exact=True).click()
    page.click("#learn")
    text = status_text(page, "learn-status", "Learned 'brass'")
    assert "in the library" in text
    info = engine.library.info("brass")
    assert len(info.loss_history) == 3
    assert (info.recommended_strength, info.recommended_scale) == (0.6, 4.5)  # the accordion preset's
    open_tab(page, "Library")
    page.locator("#library").get_by_text("brass").first.wait_for()
    open_tab(page, "Audition")  # the new style is in the list; picking it sets the sliders to its knobs
    page.click("#style input")
    page.get_by_role("option", name="brass", exact=True).click()
    page.wait_for_function("() => document.querySelector('#strength input[type=number]').value === '0.6' && "
                           "document.querySelector('#scale input[type=number]').value === '4.5'")


def test_stylize_a_clip_plays_and_downloads_with_its_length_rate_and_channels(page, studio, tmp_path, shots):
    content = wav(tmp_path / "take.wav", 1.5, 44100, 2)
    upload(page, "content", [content])
    page.click("#style input")
    page.get_by_role("option", name="bells", exact=True).click()
    set_field(page, "strength", 0.6)
    set_field(page, "scale", 4.5)
    page.click("#stylize")
    assert "Done: take_bells_s0.6_g4.5_seed0.wav" in status_text(page, "stylize-status", "Done:")
    duration = page.wait_for_function(
        "() => { const b = document.querySelector('audio[data-ab=b]'); return b && b.duration > 0 && b.duration; }"
    ).json_value()
    assert duration == pytest.approx(1.5, abs=0.01)
    original = page.evaluate("() => document.querySelector('audio[data-ab=a]').duration")
    assert original == pytest.approx(1.5, abs=0.01)
    with page.expect_download() as download:
        page.click("a.restyle-download")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "take_bells_s0.6_g4.5_seed0.wav"
    info = sf.info(str(saved))
    assert (info.frames, info.samplerate, info.channels) == (sf.info(str(content)).frames, 44100, 2)
    page.wait_for_function("() => document.querySelector('#history').innerText.includes('take_bells_s0.6_g4.5_seed0')",
                           timeout=20_000)
    page.locator("#spectrograms img").wait_for()
    screenshot_views(page, shots, "studio")
    for size in SIZES:
        assert (shots / f"studio-audition-{size}.png").stat().st_size > 10_000


def test_ab_players_share_their_position(page, studio, tmp_path):
    upload(page, "content", [wav(tmp_path / "loop.wav", 2.0, 22050, 1)])
    page.click("#stylize")
    status_text(page, "stylize-status", "Done:")
    page.wait_for_function("() => document.querySelector('audio[data-ab=b]').duration > 0")
    page.evaluate("() => { document.querySelector('audio[data-ab=a]').currentTime = 1.25; }")
    page.wait_for_function("() => Math.abs(document.querySelector('audio[data-ab=b]').currentTime - 1.25) < 0.06")


def test_a_corrupt_upload_gets_a_one_line_error_in_the_page(page, studio, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all" * 8)
    open_tab(page, "Learn")
    upload(page, "clips", [broken])
    set_field(page, "style-name", "broken-style")
    page.click("#learn")
    error = page.locator("#learn-status .restyle-error")
    error.wait_for()
    text = error.inner_text()
    assert "broken.wav" in text and "\n" not in text.strip()
    assert str(studio[2]) not in text and "spool" not in text  # no server path in the page
    assert "broken-style" not in studio[1].style_names()


def test_cancel_a_running_training_then_resume_it(page, studio, tmp_path):
    _url, engine, _work = studio
    clip = tmp_path / "long.wav"
    sf.write(str(clip), bells([440.0, 660.0], 1.0, 22050, seed=3), 22050)
    open_tab(page, "Learn")
    upload(page, "clips", [clip])
    set_field(page, "style-name", "patient")
    set_field(page, "steps", 100000)
    page.click("#learn")
    status_text(page, "learn-status", "loss")
    page.click("#learn-cancel")
    text = status_text(page, "learn-status", "cancelled")
    assert "Resume" in text and "patient" not in engine.style_names()
    stopped = int(text.split("at step ")[1].split(" ")[0])
    set_field(page, "steps", stopped + 2)
    page.click("#resume")
    status_text(page, "learn-status", "Learned 'patient'")
    assert len(engine.library.info("patient").loss_history) == stopped + 2


def test_library_exports_deletes_imports_and_renames_a_style(page, studio, tmp_path):
    _url, engine, _work = studio
    page.on("dialog", lambda dialog: dialog.accept())  # "Delete the style ...?"
    open_tab(page, "Library")
    page.click("#library-style input")
    page.get_by_role("option", name="chimes", exact=True).click()
    page.click("#export")
    status_text(page, "library-status", "Exported 'chimes'")
    link = page.locator("#exported a[href]").first
    link.wait_for()
    reply = page.request.get(urljoin(page.url, link.get_attribute("href")))
    assert reply.ok
    exported = tmp_path / "chimes.restyle"
    exported.write_bytes(reply.body())
    page.locator("#exported").get_by_text("chimes").first.wait_for()
    assert exported.name == "chimes.restyle"
    page.click("#delete")
    status_text(page, "library-status", "Deleted 'chimes'")
    assert "chimes" not in engine.style_names()
    page.locator("#import input[type=file]").set_input_files(str(exported))
    status_text(page, "library-status", "Imported 'chimes'")
    assert "chimes" in engine.style_names()
    page.click("#library-style input")
    page.get_by_role("option", name="chimes", exact=True).click()
    set_field(page, "new-name", "chimes-2")
    page.click("#rename")
    status_text(page, "library-status", "Renamed 'chimes' to 'chimes-2'")
    assert "chimes-2" in engine.style_names() and "chimes" not in engine.style_names()


def test_a_missing_gradio_is_one_line(cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio raises ImportError
    result = cli("studio", "--no-browser", "--model", "tiny", "--port", "0")
    assert result.returncode != 0
    assert result.stderr.strip() == "The studio needs Gradio: pip install 'restyle[studio]'." or \
        "pip install 'restyle[studio]'" in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("options,message", [
    (["--host", "0.0.0.0"], "--allow"),
    (["--learn-steps", "0"], "--learn-steps must be at least 1"),
])
def test_bad_studio_options_are_refused_before_the_model_loads(cli, monkeypatch, options, message):
    import restyle.bridge.commands as commands

    monkeypatch.setattr(commands, "load_engine", lambda *_: pytest.fail("the model was loaded"))
    result = cli("studio", "--no-browser", "--port", "0", *options)
    assert result.returncode != 0
    assert message in result.stderr.strip().splitlines()[-1]


def test_the_studio_logs_as_serve_does_and_refuses_an_unwritable_log_in_one_line(cli, monkeypatch, tmp_path):
    import restyle.bridge.commands as commands
    from restyle.engine import SettingsError

    def stop_here(*_):
        raise SettingsError("stopped before the model loads")

    monkeypatch.setattr(commands, "load_engine", stop_here)
    log = tmp_path / "logs" / "studio.log"
    result = cli("studio", "--no-browser", "--port", "0", "--log-file", log)
    assert result.returncode != 0 and "stopped before the model loads" in result.stderr
    assert "restyle studio starting: model mini" in log.read_text()
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    result = cli("studio", "--no-browser", "--port", "0", "--log-file", blocked / "studio.log")
    assert result.returncode != 0
    assert "Cannot write the log file" in result.stderr.strip().splitlines()[-1]


def own_address() -> str | None:
    """This machine's address on its network (not loopback), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if ipaddress.ip_address(address).is_loopback else address


def test_off_loopback_the_studio_needs_an_allowed_network_and_the_token(tiny_base, tmp_path, browser, monkeypatch):
    from restyle.bridge.studio import open_studio

    own = own_address()
    if own is None:
        pytest.skip("this machine has no network address besides loopback")
    other = "203.0.113.0/24" if ipaddress.ip_address(own) not in ipaddress.ip_network("203.0.113.0/24") \
        else "198.51.100.0/24"
    monkeypatch.setenv("RESTYLE_HOME", str(tmp_path / "home"))
    token_file = tmp_path / "token"
    token_file.write_text("a-studio-token-of-enough-length\n")
    protocol = RestyleProtocol(Engine(tiny_base, StyleLibrary(tmp_path / "styles")), Knobs())
    protocol.start()
    server, _url, _access = open_studio(protocol, "0.0.0.0", 0, [other], str(token_file))
    try:
        refused = httpx.get(f"http://{own}:{server.port}/studio/", timeout=30)
        assert refused.status_code == 403 and "--allow" in refused.json()["error"]["message"]
        assert httpx.get(f"http://127.0.0.1:{server.port}/v1/health", timeout=30).status_code == 401
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"http://127.0.0.1:{server.port}/studio/")
        page.locator("input[type=password]").wait_for()
        assert page.locator("#stylize").count() == 0
        page.locator("input[type=text]").first.fill("producer")
        page.locator("input[type=password]").fill("not-the-token")
        page.locator("input[type=password]").press("Enter")
        page.get_by_text("Incorrect", exact=False).first.wait_for()
        page.locator("input[type=text]").first.fill("producer")
        page.locator("input[type=password]").fill("a-studio-token-of-enough-length")
        page.locator("input[type=password]").press("Enter")
        page.wait_for_selector("#stylize")
        context.close()
    finally:
        server.stop()
        protocol.stop()


def test_cancel_a_running_stylize(page, studio, tmp_path):
    upload(page, "content", [wav(tmp_path / "long-take.wav", 60.0, 22050, 1)])
    page.click("#stylize")
    status_text(page, "stylize-status", "step")
    page.click("#stylize-cancel")
    assert "Stylizing was cancelled." in status_text(page, "stylize-status", "cancelled")
    assert page.locator("audio[data-ab=b]").count() == 0  # no take from a cancelled job
