"""Exceptions the engine raises: each message is one line written for a musician.

The CLI and the OSC bridge catch :class:`RestyleError` once, at their edge, and show the message as is.
"""


class RestyleError(Exception):
    """Base class: something the user can fix (a file, a name, a knob), explained in one line."""

    code = "error"


class AudioError(RestyleError):
    """An audio file is missing, unreadable, empty, silent, too long or holds NaN/inf samples."""

    code = "bad_audio"


class ModelNotFoundError(RestyleError):
    """The base model's weights are not on this machine and cannot be fetched."""

    code = "model_not_found"


class StyleNotFoundError(RestyleError):
    """No style of that name is in the style library."""

    code = "unknown_style"


class StyleExistsError(RestyleError):
    """A style of that name already exists and would be overwritten."""

    code = "style_exists"


class BaseModelMismatchError(RestyleError):
    """A style was trained on other base-model weights than the ones loaded."""

    code = "model_mismatch"


class OutputExistsError(RestyleError):
    """The output file already exists and would be replaced."""

    code = "output_exists"


class BusyError(RestyleError):
    """Another process is doing the same work right now (e.g. training a style of the same name)."""

    code = "busy"


class DamagedStyleError(RestyleError):
    """A style's folder is incomplete or its files are damaged."""

    code = "damaged_style"


class SettingsError(RestyleError):
    """A knob or option is out of range, or a name is not allowed."""

    code = "bad_settings"


class RendererMissingError(RestyleError):
    """FluidSynth or the General MIDI soundfont (the mini model's data renderer) is not installed."""

    code = "renderer_missing"


class CheckpointError(RestyleError):
    """A training checkpoint cannot be used to resume this run."""

    code = "bad_checkpoint"


class CancelledError(RestyleError):
    """The caller asked to stop; nothing was written."""

    code = "cancelled"


class AdapterNotSupportedError(RestyleError):
    """A style carries a LoRA adapter that the chosen backend cannot apply."""

    code = "adapter_not_supported"
