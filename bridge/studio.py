"""The studio (``restyle studio``): a page in the browser to learn styles, audition them and keep the best takes.

Built with Gradio and mounted at ``/studio`` on the HTTP API's own FastAPI application (bridge/http_api.py), so the
page and the API share one loaded model, one job queue, one spool and the same access rules: the ``--allow``
networks, and off loopback the API's token, asked for on Gradio's login page (any user name, the token as
password). The page drives the engine only through the protocol's ``submit_*`` methods and the queue: it copies
uploads into the spool, queues a job, follows the job's progress, and cancels through the queue.
"""

from __future__ import annotations

import html
import io
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from restyle.engine import RestyleError, SettingsError

from .http_api import HttpJob, HttpService
from .jobs import CANCELLED, FAILED, RUNNING
from .spool import upload_suffix

PATH = "/studio"
MEDIA = "/studio-media"
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".m4a", ".opus"}
PLAYER_JS = """
(() => {
  const partner = (el) => {
    const box = el.closest && el.closest('.restyle-ab');
    return box ? [...box.querySelectorAll('audio')].find((a) => a !== el) : null;
  };
  // A/B players share one position: starting one continues where the other was; seeking one moves both.
  document.addEventListener('play', (e) => {
    const other = partner(e.target);
    if (!other) return;
    const apart = Math.abs(other.currentTime - e.target.currentTime) > 0.05;
    if (!other.ended && apart) e.target.currentTime = other.currentTime;
    other.pause();
  }, true);
  document.addEventListener('seeked', (e) => {
    const other = partner(e.target);
    if (other && Math.abs(other.currentTime - e.target.currentTime) > 0.05) other.currentTime = e.target.currentTime;
  }, true);
  document.addEventListener('click', (e) => {
    const button = e.target.closest && e.target.closest('.restyle-ab-switch');
    if (!button) return;
    const players = [...button.closest('.restyle-ab').querySelectorAll('audio')];
    const playing = players.find((a) => !a.paused);
    (playing ? players.find((a) => a !== playing) : players[0]).play();
  });
})();
"""
CSS = """
.restyle-status { min-height: 2.6em; }
.restyle-error { color: #b91c1c; font-weight: 600; }
.restyle-bar { height: 10px; background: #e5e7eb; border-radius: 5px; overflow: hidden; margin: 4px 0; }
.restyle-bar > div { height: 100%; background: #f97316; }
.restyle-ab { display: grid; grid-template-columns: 1fr; gap: 6px; }
.restyle-ab audio { width: 100%; }
.restyle-ab .row { display: flex; align-items: center; gap: 8px; }
.restyle-ab .row span { min-width: 7.5em; font-weight: 600; white-space: nowrap; }
.restyle-hint p { font-size: 0.85em; opacity: 0.75; margin: 0; }
"""


class StudioUnavailableError(RestyleError):
    code = "missing_extra"


@dataclass(frozen=True)
class StudioSettings:
    """How the studio behaves."""

    history: int = 8  # takes kept in a session's history (older ones are deleted)
    poll_seconds: float = 0.25  # how often the page's progress looks at its job
    examples: tuple[Path, ...] = ()  # shipped content clips offered instead of an upload


@dataclass(frozen=True)
class Take:
    """One stylized result in a session's history."""

    path: Path
    key: str
    content_key: str
    style: str
    strength: float
    scale: float
    seed: int
    seconds: float

    def row(self) -> list:
        """The take as a history table row."""
        return [self.path.name, self.style, self.strength, self.scale, self.seed, round(self.seconds, 2)]


def import_gradio():
    """Gradio, or one line saying how to install it."""
    try:
        import gradio
    except ImportError:
        raise StudioUnavailableError("The studio needs Gradio: pip install 'restyle[studio]'.") from None
    return gradio


def take_name(stem: str, label: str, strength: float, scale: float, seed: int, suffix: str) -> str:
    """A take's download name, with its style and knobs: ``take_accordion_s0.6_g4.5_seed0.wav``."""
    return f"{stem}_{label}_s{strength:g}_g{scale:g}_seed{seed}{suffix}"


def status_line(message: str, error: bool = False) -> str:
    """One line of status for the page (an error in red)."""
    cls = "restyle-error" if error else "restyle-note"
    return f'<div class="{cls}">{html.escape(message)}</div>'


def progress_html(label: str, fraction: float, detail: str) -> str:
    """A progress bar with a line of detail under it."""
    return (f'<div class="restyle-progress"><b>{html.escape(label)}</b> {fraction * 100:.0f}%'
            f'<div class="restyle-bar"><div style="width:{fraction * 100:.1f}%"></div></div>'
            f'<span>{html.escape(detail)}</span></div>')


def eta_text(seconds: float | None) -> str:
    """'about 1 min 20 s left' (or nothing while it is unknown)."""
    if seconds is None:
        return ""
    seconds = max(0, round(seconds))
    return f"about {seconds // 60} min {seconds % 60} s left" if seconds >= 60 else f"about {seconds} s left"


class Studio:
    """The studio's handlers and state: what each browser session is running, its takes, the served media."""

    def __init__(self, service: HttpService, settings: StudioSettings = StudioSettings()):
        self.service = service
        self.protocol = service.protocol
        self.settings = settings
        self.root = service.spool.root / "studio"  # takes live here until the server stops (the spool is deleted)
        self.media: dict[str, Path] = {}
        self.running: dict[str, str] = {}  # session -> job id
        self._lock = threading.Lock()

    # -- shared helpers ----------------------------------------------------------------------------------------
    def styles(self) -> list[str]:
        """The styles the loaded model can use."""
        return self.protocol.engine.style_names()

    def serve_file(self, path: Path) -> str:
        """A URL for ``path`` under /studio-media (an unguessable key; no server path in it)."""
        key = secrets.token_urlsafe(16)
        with self._lock:
            self.media[key] = path
        return key

    def forget(self, take: Take) -> None:
        """Delete a take that fell out of its session's history, and its links."""
        with self._lock:
            self.media.pop(take.content_key, None)
            self.media.pop(take.key, None)
        shutil.rmtree(take.path.parent, ignore_errors=True)  # the take, its content copy, its spectrogram

    def media_url(self, key: str) -> str:
        """The link the page plays or downloads a served file from."""
        return f"{MEDIA}/{key}/{self.media[key].name}"

    def receive(self, files: list[str], folder: Path, prefix: str) -> tuple[list[Path], dict[str, str]]:
        """Copy the page's uploads into a spool folder; returns the copies and a path -> file name map."""
        paths, names = [], {str(folder): "<upload>"}
        for i, name in enumerate(files, 1):
            with open(name, "rb") as source:
                path = self.service.spool.receive(source, folder, f"{prefix}-{i}{upload_suffix(name)}")
            paths.append(path)
            names[str(path)] = Path(name).name
        return paths, names

    def queue(self, folder: Path, names: dict[str, str], submit) -> HttpJob:
        """Run ``submit()`` (a protocol submit_*), registering its job like an API job; the folder goes on refusal."""
        try:
            job = submit()
        except RestyleError as exc:
            self.service.spool.remove(folder)
            raise type(exc)(_replace(str(exc), names)) from None
        entry = HttpJob(job, folder, names)
        with self.service._lock:
            self.service.jobs[job.id] = entry
        return entry

    def follow(self, entry: HttpJob, session: str, label: str) -> Iterator[str]:
        """Progress lines for a job until it ends (its last line says how it ended)."""
        job = entry.job
        with self._lock:
            self.running[session] = job.id
        started, first_done = None, 0
        try:
            while not job.finished:
                if job.state == RUNNING and started is None:
                    started, first_done = time.monotonic(), job.done
                yield progress_html(label, job.fraction, self._detail(entry, started, first_done))
                time.sleep(self.settings.poll_seconds)
        finally:
            with self._lock:
                if self.running.get(session) == job.id:
                    del self.running[session]

    def _detail(self, entry: HttpJob, started: float | None, first_done: int) -> str:
        job = entry.job
        if job.state != RUNNING:
            position = self.protocol.jobs.position(job)
            return f"Waiting in the queue (position {position})." if position else "Starting."
        parts = [f"step {job.done} of {job.total}" if job.total else "starting"]
        if job.loss is not None:
            parts.append(f"loss {job.loss:.4f}")
        elapsed = time.monotonic() - started if started is not None else 0.0
        if job.done > first_done and elapsed > 0:
            parts.append(eta_text((job.total - job.done) * elapsed / (job.done - first_done)))
        return " · ".join(p for p in parts if p)

    def ended(self, entry: HttpJob) -> str | None:
        """The error or cancellation line of a finished job, or None when it is done."""
        job = entry.job
        if job.state == FAILED:
            return status_line(self.service.public(entry, job.error[1]), error=True)
        if job.state == CANCELLED:
            what = "Training" if job.kind == "learn" else "Stylizing"
            extra = f" at step {job.done} of {job.total}; press Resume with the same clips to continue" \
                if job.kind == "learn" and job.done else ""
            return status_line(f"{what} was cancelled{extra}.")
        return None

    def cancel(self, request) -> str:
        """Cancel this session's running job (a running one stops at its next step)."""
        with self._lock:
            job_id = self.running.get(_session(request))
        if job_id is None:
            return status_line("Nothing is running.")
        self.protocol.jobs.cancel(job_id)
        return status_line("Cancelling…")

    # -- learn -------------------------------------------------------------------------------------------------
    def learn(self, files, folder_files, name: str, preset: str, steps, resume: bool, request) -> Iterator[tuple]:
        """Learn a style from the dropped clips: (status, style choices, library rows) as it goes."""
        keep = (_no_change(),) * 3
        try:
            clips = [f for f in _paths(files) + _paths(folder_files) if Path(f).suffix.lower() in AUDIO_SUFFIXES]
            if not clips:
                raise SettingsError("Drop one or more audio clips (or a folder of them) of the sound to learn.")
            if not (name or "").strip():
                raise SettingsError("Give the new style a name, e.g. 'strings' (letters, digits, - and _).")
            folder = self.service.spool.new_folder()
            try:
                paths, names = self.receive(clips, folder, "clip")
            except RestyleError:
                self.service.spool.remove(folder)
                raise
            entry = self.queue(folder, names, lambda: self.protocol.submit_learn(
                name.strip(), paths, _owner(request), self.service.settings.per_client,
                int(steps) if steps else None, None if preset in (None, "", "auto") else preset, bool(resume)))
        except RestyleError as exc:
            yield status_line(str(exc), error=True), *keep
            return
        for line in self.follow(entry, _session(request), f"Learning '{name.strip()}'"):
            yield line, *keep
        final = self.ended(entry) or status_line(f"Learned '{entry.job.result['style']}': it is in the library "
                                                 "and in Audition's style list.")
        yield final, self.style_choices(), self.style_choices(), self.library_rows()

    # -- audition ----------------------------------------------------------------------------------------------
    def recommended(self, style: str) -> tuple:
        """The sliders' starting values for a style or blend: its first style's recommended strength and scale."""
        try:
            settings = self.protocol.engine.recommended_settings(self.protocol.engine.style_mix(style))
        except RestyleError:
            return _no_change(), _no_change()
        return round(settings.strength, 3), round(settings.scale, 3)

    def stylize(self, content: str | None, example: str | None, style: str, strength: float, scale: float,
                seed, history: list[Take], request) -> Iterator[tuple]:
        """Stylize the content clip: (status, A/B players, spectrograms, history, history rows, downloads)."""
        keep = (_no_change(),) * 5
        try:
            source = content or self._example(example)
            if not source:
                raise SettingsError("Drop a content clip (or pick an example) to stylize.")
            if not (style or "").strip():
                raise SettingsError("Choose a style (or type a blend such as 'accordion:0.7,bird-tweet:0.3').")
            seed = int(seed or 0)
            folder = self.service.spool.new_folder()
            try:
                (path,), names = self.receive([source], folder, "input")
            except RestyleError:
                self.service.spool.remove(folder)
                raise
            options = {"style": style.strip(), "strength": strength, "scale": scale, "seed": seed}
            stem = Path(source).stem[:60] or "take"
            entry = self.queue(folder, names, lambda: self.protocol.submit_stylize(
                path, options, folder, stem, _owner(request), self.service.settings.per_client))
        except RestyleError as exc:
            yield status_line(str(exc), error=True), *keep
            return
        for line in self.follow(entry, _session(request), f"Stylizing with '{style.strip()}'"):
            yield line, *keep
        final = self.ended(entry)
        if final is not None:
            yield final, *keep
            return
        take = self._keep_take(entry, source, history, _session(request))
        history = [take, *history]
        for old in history[self.settings.history:]:
            self.forget(old)
        history = history[: self.settings.history]
        yield (status_line(f"Done: {take.path.name} ({take.seconds:.2f} s)."), self.players(take),
               spectrograms(Path(source), take.path, take.style), history, [t.row() for t in history],
               [str(t.path) for t in history])

    def _example(self, example: str | None) -> str | None:
        chosen = [p for p in self.settings.examples if p.name == example]
        return str(chosen[0]) if chosen else None

    def _keep_take(self, entry: HttpJob, source: str, history: list[Take], session: str) -> Take:
        """Move the result out of the job's spool folder into the session's takes, named with its knobs."""
        job, settings = entry.job, entry.job.params["settings"]
        result = Path(job.result["output"])
        label = self.protocol.engine.style_mix(job.params["style"]).label
        folder = self.root / session[:32] / secrets.token_hex(4)
        folder.mkdir(parents=True, exist_ok=True)
        stem = Path(entry.names.get(str(job.params["input"]), "take")).stem[:60] or "take"
        target = folder / take_name(stem, label, settings.strength, settings.scale, settings.seed, result.suffix)
        shutil.move(result, target)
        content_copy = folder / f"content{Path(source).suffix.lower() or '.wav'}"
        shutil.copyfile(source, content_copy)
        return Take(target, self.serve_file(target), self.serve_file(content_copy), job.params["style"],
                    settings.strength, settings.scale, settings.seed, float(job.result["seconds"]))

    def players(self, take: Take) -> str:
        """The A/B players (original and take), sharing their position, and a download link."""
        a, b = self.media_url(take.content_key), self.media_url(take.key)
        return (f'<div class="restyle-ab">'
                f'<div class="row"><span>A · original</span>'
                f'<audio data-ab="a" controls preload="auto" src="{a}"></audio></div>'
                f'<div class="row"><span>B · {html.escape(take.style)}</span>'
                f'<audio data-ab="b" controls preload="auto" src="{b}"></audio></div>'
                f'<div class="row"><button class="restyle-ab-switch lg secondary">Switch A/B</button>'
                f'<a class="restyle-download" href="{b}" download="{html.escape(take.path.name)}">'
                f'Download {html.escape(take.path.name)}</a></div></div>')

    def pick_take(self, history: list[Take], evt) -> tuple:
        """A history row clicked: its players and spectrogram."""
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if not history or index is None or index >= len(history):
            return _no_change(), _no_change()
        take = history[index]
        return self.players(take), spectrograms(self.media[take.content_key], take.path, take.style)

    # -- library -----------------------------------------------------------------------------------------------
    def library_rows(self) -> list[list]:
        """Every style: name, where it comes from, recommended strength and scale, training steps."""
        library, rows = self.protocol.engine.library, []
        for name in self.styles():
            try:
                info = library.info(name)
                rows.append([name, "shipped" if library.is_shipped(name) else "yours", info.recommended_strength,
                             info.recommended_scale, len(info.loss_history)])
            except RestyleError as exc:
                rows.append([name, f"damaged: {exc}", None, None, None])
        return rows

    def style_choices(self):
        """The style lists of every view, refreshed."""
        return _dropdown(self.styles())

    def rename(self, old: str, new: str) -> tuple:
        """Rename a style of your own: (status, library rows, style lists)."""
        try:
            if not old:
                raise SettingsError("Pick the style to rename.")
            self.protocol.engine.library.rename(old, (new or "").strip())
            if self.protocol.knobs.get("style") == old:
                self.protocol.knobs.set("style", new.strip())
        except RestyleError as exc:
            return status_line(str(exc), error=True), _no_change(), _no_change(), _no_change()
        return (status_line(f"Renamed '{old}' to '{new.strip()}'."), self.library_rows(), self.style_choices(),
                self.style_choices())

    def delete(self, name: str | None) -> tuple:
        """Delete a style of your own (the page asks first): (status, library rows, style lists)."""
        if not name:
            return status_line("Nothing deleted."), _no_change(), _no_change(), _no_change()
        try:
            self.protocol.engine.library.remove(name)
        except RestyleError as exc:
            return status_line(str(exc), error=True), _no_change(), _no_change(), _no_change()
        return status_line(f"Deleted '{name}'."), self.library_rows(), self.style_choices(), self.style_choices()


    def export(self, name: str | None) -> tuple:
        """Write a style into one .restyle file to download (as `restyle styles export`): (status, file)."""
        from restyle.engine.style_file import SUFFIX, export_style

        try:
            if not name:
                raise SettingsError("Pick the style to export.")
            folder = self.root / "exports" / secrets.token_hex(4)
            folder.mkdir(parents=True, exist_ok=True)
            path = export_style(self.protocol.engine.library, name, folder / f"{name}{SUFFIX}")
        except RestyleError as exc:
            return status_line(str(exc), error=True), _no_change()
        return status_line(f"Exported '{name}': download {path.name} below."), _shown(str(path))

    def import_file(self, upload: str | None) -> tuple:
        """Install a style from a .restyle file (as `restyle styles import`): (status, rows, style lists)."""
        from restyle.engine.style_file import import_style, read_style_file

        try:
            if not upload:
                raise SettingsError("Drop a .restyle file made by Export (or `restyle styles export`).")
            engine = self.protocol.engine
            folder = import_style(engine.library, read_style_file(upload), engine.base.fingerprint,
                                  engine.base.model_id)
        except RestyleError as exc:
            message = str(exc).replace(str(Path(upload).parent) + "/", "") if upload else str(exc)
            return status_line(message, error=True), _no_change(), _no_change(), _no_change()
        return (status_line(f"Imported '{folder.name}'."), self.library_rows(), self.style_choices(),
                self.style_choices())


def _replace(message: str, names: dict[str, str]) -> str:
    for path in sorted(names, key=len, reverse=True):
        message = message.replace(path, names[path])
    return message


def _paths(files) -> list[str]:
    if not files:
        return []
    return [str(getattr(f, "name", f)) for f in (files if isinstance(files, list) else [files])]


def _session(request) -> str:
    return getattr(request, "session_hash", None) or "anonymous"


def _owner(request) -> str:
    client = getattr(request, "client", None)
    return getattr(client, "host", "") or ""


def _no_change():
    import gradio as gr

    return gr.skip()


def _shown(value):
    import gradio as gr

    return gr.update(value=value, visible=True)


def _dropdown(choices: list[str]):
    import gradio as gr

    return gr.update(choices=choices)


def spectrograms(content: Path, result: Path, style: str) -> str:
    """A PNG of both clips' spectrograms, time (s) across and frequency (Hz) up; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import soundfile as sf

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.0), dpi=100, sharey=True, constrained_layout=True)
    for ax, path, title in zip(axes, (content, result), ("A · original", f"B · {style}")):
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
        mono = audio.mean(axis=1)
        n_fft, hop = 1024, 256
        if len(mono) < n_fft:
            mono = np.pad(mono, (0, n_fft - len(mono)))
        frames = np.lib.stride_tricks.sliding_window_view(mono, n_fft)[::hop] * np.hanning(n_fft)
        power = np.abs(np.fft.rfft(frames, axis=1)).T ** 2
        db = 10 * np.log10(np.maximum(power, 1e-10))
        ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=db.max() - 80, vmax=db.max(),
                  extent=(0, len(audio) / rate, 0, rate / 2))
        ax.set_title(title)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (Hz)")
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    target = result.with_suffix(".spectrogram.png")
    target.write_bytes(out.getvalue())
    return str(target)


def build_page(studio: Studio, presets: list[str]):
    """The Gradio page: Learn, Audition and Library tabs."""
    gr = import_gradio()
    styles = studio.styles()
    first = styles[0] if styles else None
    strength, scale = studio.recommended(first) if first else (0.7, 5.0)
    with gr.Blocks(title="Restyle studio", analytics_enabled=False, delete_cache=(600, 3600)) as page:
        gr.Markdown("## Restyle studio\nLearn a sound's style from a few clips, then hear any clip in it.")
        with gr.Tabs():
            with gr.Tab("Audition", id="audition"):
                history = gr.State([])
                with gr.Row(equal_height=False):
                    with gr.Column(scale=1, min_width=300):
                        content = gr.Audio(label="Content clip", type="filepath", sources=["upload"],
                                           elem_id="content")
                        with gr.Row():
                            example = gr.Dropdown([p.name for p in studio.settings.examples], value=None,
                                                  label="Example", elem_id="example", min_width=140)
                            style = gr.Dropdown(styles, value=first, label="Style", allow_custom_value=True,
                                                elem_id="style", min_width=140)
                        gr.Markdown("A blend mixes styles: `accordion:0.7,bird-tweet:0.3`.",
                                    elem_classes=["restyle-hint"])
                        with gr.Row():
                            strength_in = gr.Slider(0.05, 1.0, value=strength, step=0.05, label="Strength",
                                                    elem_id="strength", min_width=120)
                            scale_in = gr.Slider(0.0, 15.0, value=scale, step=0.5, label="Scale", elem_id="scale",
                                                 min_width=120)
                            seed = gr.Number(0, label="Seed", precision=0, minimum=0, elem_id="seed", min_width=80)
                        with gr.Row():
                            go = gr.Button("Stylize", variant="primary", elem_id="stylize")
                            stop = gr.Button("Cancel", variant="stop", elem_id="stylize-cancel")
                    with gr.Column(scale=2, min_width=440):
                        status = gr.HTML(elem_classes=["restyle-status"], elem_id="stylize-status")
                        players = gr.HTML(elem_id="players")
                        picture = gr.Image(label="Spectrograms", show_label=False, type="filepath",
                                           interactive=False, elem_id="spectrograms", buttons=[])
                gr.Markdown("### History (click a row to hear it again)")
                table = gr.Dataframe(headers=["file", "style", "strength", "scale", "seed", "seconds"],
                                     interactive=False, elem_id="history", wrap=True)
                downloads = gr.File(label="Downloads", file_count="multiple", interactive=False,
                                    elem_id="downloads")
            with gr.Tab("Learn", id="learn"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=1, min_width=300):
                        clips = gr.File(label="Clips of the sound to learn", file_count="multiple",
                                        file_types=sorted(AUDIO_SUFFIXES), elem_id="clips", height=170)
                        folder = gr.File(label="…or a whole folder", file_count="directory", elem_id="clip-folder",
                                         height=170)
                    with gr.Column(scale=1, min_width=300):
                        name = gr.Textbox(label="Style name", placeholder="e.g. strings", elem_id="style-name")
                        with gr.Row():
                            preset = gr.Dropdown(["auto", *presets], value="auto", label="Preset",
                                                 elem_id="preset", min_width=120)
                            steps = gr.Number(studio.protocol.learn_steps, label="Training steps", precision=0,
                                              minimum=1, elem_id="steps", min_width=120)
                        gr.Markdown("The preset sets the style's recommended knobs (auto: the preset of the same "
                                    "name, else the default). Resume continues a cancelled run: same name, same "
                                    "clips, more steps.", elem_classes=["restyle-hint"])
                        with gr.Row():
                            learn = gr.Button("Learn", variant="primary", elem_id="learn", min_width=80)
                            resume = gr.Button("Resume", elem_id="resume", min_width=80)
                            learn_stop = gr.Button("Cancel", variant="stop", elem_id="learn-cancel", min_width=80)
                learn_status = gr.HTML(elem_classes=["restyle-status"], elem_id="learn-status")
            with gr.Tab("Library", id="library"):
                rows = gr.Dataframe(studio.library_rows(), headers=["style", "from", "strength", "scale", "steps"],
                                    interactive=False, elem_id="library")
                with gr.Row():
                    picked = gr.Dropdown(styles, value=None, label="Style", elem_id="library-style")
                    new_name = gr.Textbox(label="New name", elem_id="new-name")
                with gr.Row():
                    rename = gr.Button("Rename", elem_id="rename")
                    delete = gr.Button("Delete", variant="stop", elem_id="delete")
                    refresh = gr.Button("Refresh", elem_id="refresh")
                    export = gr.Button("Export", elem_id="export")
                with gr.Row(equal_height=False):
                    imported = gr.File(label="Import a .restyle file", file_types=[".restyle"], elem_id="import",
                                       height=170)
                    exported = gr.File(label="Exported style (download)", interactive=False, elem_id="exported",
                                       visible=False)
                library_status = gr.HTML(elem_classes=["restyle-status"], elem_id="library-status")

        on = handlers(gr, studio)
        outputs = [status, players, picture, history, table, downloads]
        go.click(on["stylize"], [content, example, style, strength_in, scale_in, seed, history], outputs,
                 show_progress="hidden", concurrency_limit=None)
        stop.click(on["cancel"], None, status, concurrency_limit=None, queue=False)
        style.change(studio.recommended, style, [strength_in, scale_in], queue=False)
        example.change(lambda e: None if e else gr.skip(), example, content, queue=False)
        table.select(on["pick"], history, [players, picture], queue=False)

        learn_out = [learn_status, style, picked, rows]
        learn_in = [clips, folder, name, preset, steps]
        learn.click(on["learn"], learn_in, learn_out, show_progress="hidden", concurrency_limit=None)
        resume.click(on["resume"], learn_in, learn_out, show_progress="hidden", concurrency_limit=None)
        learn_stop.click(on["cancel"], None, learn_status, concurrency_limit=None, queue=False)

        lib_out = [library_status, rows, picked, style]
        rename.click(studio.rename, [picked, new_name], lib_out, queue=False)
        delete.click(studio.delete, picked, lib_out, queue=False,
                     js="(name) => (name && confirm(`Delete the style '${name}'? This cannot be undone.`)) ? name "
                        ": null")
        export.click(studio.export, picked, [library_status, exported])  # queued: file links get the mount path
        imported.upload(studio.import_file, imported, lib_out, queue=False)
        page.load(lambda: (studio.library_rows(), studio.style_choices(), studio.style_choices()), None,
                  [rows, picked, style], queue=False)
        refresh.click(lambda: (gr.skip(), studio.library_rows(), studio.style_choices(), studio.style_choices()),
                      None, lib_out, queue=False)
    return page


def handlers(gr, studio: Studio) -> dict:
    """The page's handlers, with the annotations Gradio reads to pass the request and event data."""

    def stylize(content, example, style, strength, scale, seed, history, request):
        yield from studio.stylize(content, example, style, strength, scale, seed, history, request)

    def learn(files, folder, name, preset, steps, request):
        yield from studio.learn(files, folder, name, preset, steps, False, request)

    def resume(files, folder, name, preset, steps, request):
        yield from studio.learn(files, folder, name, preset, steps, True, request)

    def cancel(request):
        return studio.cancel(request)

    def pick(history, evt):
        return studio.pick_take(history, evt)

    for fn in (stylize, learn, resume, cancel):
        fn.__annotations__ = {"request": gr.Request}
    pick.__annotations__ = {"evt": gr.SelectData}
    return {fn.__name__: fn for fn in (stylize, learn, resume, cancel, pick)}


def mount_studio(app, studio: Studio):
    """Mount the page at /studio on the API's app, with its media route and the API's access rules."""
    gr = import_gradio()
    from fastapi import HTTPException
    from fastapi.responses import FileResponse, JSONResponse
    from starlette.requests import Request

    from restyle.engine.presets import load_style_presets

    service = studio.service

    @app.middleware("http")
    async def networks(request: Request, call_next):
        host = request.client.host if request.client else ""
        if request.url.path.startswith((PATH, MEDIA)) and not service.clients.allows(host):
            return JSONResponse({"error": {"code": "forbidden", "message": "This server does not accept requests "
                                           "from your network; ask for --allow."}}, status_code=403)
        return await call_next(request)

    @app.get(f"{MEDIA}/{{key}}/{{name}}", include_in_schema=False)
    def media(key: str, name: str) -> FileResponse:
        path = studio.media.get(key)
        if path is None or path.name != name or not path.exists():
            raise HTTPException(404)
        return FileResponse(path, filename=name)

    token = service.gate.token
    auth = None if token is None else (lambda _user, password: _token_ok(token, password))
    page = build_page(studio, sorted(p for p in load_style_presets() if p != "default"))
    studio.root.mkdir(parents=True, exist_ok=True)
    theme = gr.themes.Soft(primary_hue="orange", font=["ui-sans-serif", "system-ui", "sans-serif"],
                           font_mono=["ui-monospace", "monospace"])
    return gr.mount_gradio_app(app, page, path=PATH, auth=auth, auth_message="Enter any name and this server's "
                               "access token as the password.", allowed_paths=[str(studio.root)], ssr_mode=False,
                               mcp_server=False, pwa=False, theme=theme, css=CSS, head=f"<script>{PLAYER_JS}</script>",
                               footer_links=[], max_file_size=service.spool.settings.max_upload_bytes)


def _token_ok(token: str, given: str) -> bool:
    import hmac

    return hmac.compare_digest((given or "").strip().encode(), token.encode())


def open_studio(protocol, host: str, port: int, allow: list[str], token_file: str | None = None,
                spool_settings=None, settings: StudioSettings = StudioSettings()):
    """Start the HTTP API with the studio mounted on it; returns the server and the page's URL and access line."""
    import_gradio()
    from .http_api import HttpServer, HttpSettings, access_for, create_app
    from .osc_server import ClientFilter
    from .spool import Spool, SpoolSettings
    from .tokens import TokenGate

    clients = ClientFilter(host, allow)
    token, access, spool_root = access_for(host, port, token_file)
    spool = Spool(spool_root.with_name(spool_root.name.replace("http-", "studio-")), spool_settings or SpoolSettings())
    service = HttpService(protocol, spool, TokenGate(token), clients, HttpSettings())
    studio = Studio(service, settings)
    app = mount_studio(create_app(service), studio)
    server = HttpServer(service, host, port, app=app)
    server.start()
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return server, f"http://{shown}:{server.port}{PATH}/", access
