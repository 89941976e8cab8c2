"""What the server and its clients agree on, importable without the engine: the OSC root, the default port, how
knob values are shown."""

ROOT = "/restyle"
DEFAULT_PORT = 9100  # clear of AbletonOSC (11000/11001), common REAPER OSC setups (8000/9000) and 8080
DISPLAY_DIGITS = 6  # OSC carries float32: 0.7 arrives as 0.699999988; six significant digits show it as 0.7


def display_value(value: object) -> object:
    """A knob value as people read it: floats rounded to what float32 holds, everything else unchanged."""
    return float(f"{value:.{DISPLAY_DIGITS}g}") if isinstance(value, float) else value
