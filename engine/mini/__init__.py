"""The mini base model shipped with Restyle: a small spectrogram diffusion model trained here on General MIDI
audio rendered offline, so that everything works with no download. ``architecture`` defines it, ``melodies`` and
``render`` make its data, ``train`` trains it, ``acceptance`` measures what a style learned on it does.
"""

from importlib.resources import files
from pathlib import Path

MINI = "mini"
PACKAGE_DIR = Path(str(files(__name__)))  # a real folder: wheels install unzipped
MODEL_DIR = PACKAGE_DIR / "model"  # the shipped weights, in diffusers layout with spectrogram.json
STYLES_DIR = PACKAGE_DIR / "styles"  # styles trained on it, shipped read-only next to the user's own
DEMO_CONTENT = PACKAGE_DIR / "demo-melody.flac"  # a held-out piano melody rendered by FluidSynth
BUNDLED_STYLES = ("accordion", "tubular-bells", "bird-tweet")
DEMO_STYLE = "tubular-bells"  # the shipped style that moves clips furthest towards its sound (acceptance (a))
