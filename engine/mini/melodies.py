"""Random music as MIDI (mido): melodies, chords and rhythms, reproducible from a seed.

Each phrase is a list of notes in seconds; ``to_midi`` writes phrases for one General MIDI instrument. The
training set and the held-out acceptance set draw from separate seed streams, so no held-out melody is
ever trained on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import mido

SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "pentatonic": (0, 2, 4, 7, 9),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
}
DRUM_CHANNEL = 9
DRUM_NOTES = (35, 36, 38, 40, 42, 44, 46, 49, 51)
TICKS_PER_BEAT = 480
TEMPO = 500_000  # microseconds per beat: 120 bpm, so one beat is 0.5 s and times convert exactly


@dataclass(frozen=True)
class Note:
    pitch: int
    start: float  # seconds
    duration: float
    velocity: int


def _scale_pitches(rng: random.Random, low: int, high: int) -> list[int]:
    root = rng.randrange(12)
    steps = SCALES[rng.choice(sorted(SCALES))]
    return [p for p in range(low, high + 1) if (p - root) % 12 in steps]


def melody(rng: random.Random, seconds: float, low: int = 60, high: int = 79) -> list[Note]:
    """A monophonic line moving mostly by scale steps, at a random tempo, with occasional rests."""
    pitches = _scale_pitches(rng, low, high)
    beat = 60.0 / rng.uniform(80, 160)
    index, time, notes = rng.randrange(len(pitches)), 0.0, []
    while time < seconds:
        length = beat * rng.choice((0.5, 0.5, 1, 1, 1, 2))
        if rng.random() > 0.1:
            notes.append(Note(pitches[index], time, min(length, seconds - time) * 0.95, rng.randint(70, 120)))
        index = min(max(index + rng.choice((-2, -1, -1, 1, 1, 2, 3, -3)), 0), len(pitches) - 1)
        time += length
    return notes


def chords(rng: random.Random, seconds: float, low: int = 48, high: int = 76) -> list[Note]:
    """Triads from the scale, held or arpeggiated."""
    pitches = _scale_pitches(rng, low, high - 7)
    beat = 60.0 / rng.uniform(70, 140)
    arpeggio = rng.random() < 0.5
    time, notes = 0.0, []
    while time < seconds:
        root = rng.randrange(len(pitches) - 4) if len(pitches) > 4 else 0
        triad = [pitches[min(root + k, len(pitches) - 1)] for k in (0, 2, 4)]
        length = beat * rng.choice((2, 4))
        velocity = rng.randint(60, 110)
        for k, pitch in enumerate(triad):
            offset = k * beat / 2 if arpeggio else 0.0
            if time + offset < seconds:
                notes.append(Note(pitch, time + offset, (min(length, seconds - time) - offset) * 0.95, velocity))
        time += length
    return notes


def rhythm(rng: random.Random, seconds: float, low: int = 55, high: int = 72) -> list[Note]:
    """One or two pitches repeated in a syncopated pattern."""
    pitches = rng.sample(range(low, high + 1), 2)
    step = 60.0 / rng.uniform(90, 150) / 2
    pattern = [rng.random() < 0.6 for _ in range(8)]
    notes, k = [], 0
    while k * step < seconds:
        if pattern[k % 8]:
            notes.append(Note(rng.choice(pitches), k * step, step * 0.9, rng.randint(60, 120)))
        k += 1
    return notes


def drum_pattern(rng: random.Random, seconds: float) -> list[Note]:
    """A kit groove on General MIDI percussion notes (channel 10)."""
    step = 60.0 / rng.uniform(80, 150) / 4
    lanes = {note: [rng.random() < 0.3 for _ in range(16)] for note in rng.sample(DRUM_NOTES, 4)}
    notes, k = [], 0
    while k * step < seconds:
        notes += [Note(n, k * step, step, rng.randint(70, 127)) for n, hits in lanes.items() if hits[k % 16]]
        k += 1
    return notes


def phrase(rng: random.Random, seconds: float, low: int, high: int, drums: bool = False) -> list[Note]:
    """A random phrase of one of the kinds above, within the instrument's range."""
    if drums:
        return drum_pattern(rng, seconds)
    kind = rng.choice((melody, melody, chords, rhythm))
    return kind(rng, seconds, low, min(high, low + 24) if kind is melody else high)


def to_midi(phrases: list[list[Note]], program: int, drums: bool = False, gap: float = 0.5) -> mido.MidiFile:
    """Phrases one after another, ``gap`` seconds apart, for one GM program (or the drum channel)."""
    channel = DRUM_CHANNEL if drums else 0
    events: list[tuple[float, int, mido.Message]] = []
    offset = 0.0
    for notes in phrases:
        for n in notes:
            events.append((offset + n.start, 1, mido.Message("note_on", channel=channel, note=n.pitch, velocity=n.velocity)))
            events.append((offset + n.start + n.duration, 0, mido.Message("note_off", channel=channel, note=n.pitch)))
        offset += max((n.start + n.duration for n in notes), default=0.0) + gap
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=TEMPO)])
    if not drums:
        track.append(mido.Message("program_change", channel=channel, program=program))
    now = 0
    for seconds, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        tick = round(seconds * 2 * TICKS_PER_BEAT)  # 120 bpm: two beats per second
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=TICKS_PER_BEAT))
    midi = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(track)
    return midi
