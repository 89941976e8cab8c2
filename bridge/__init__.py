"""Restyle's DAW-facing side (OSC server, MIDI knobs, job queue, ``restyle send``), built on ``engine``.

It imports ``engine``; ``engine`` never imports it.
"""
