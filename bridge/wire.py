"""What the server and its clients agree on, importable without the engine: the OSC root and the default port."""

ROOT = "/restyle"
DEFAULT_PORT = 9100  # clear of AbletonOSC (11000/11001), common REAPER OSC setups (8000/9000) and 8080
