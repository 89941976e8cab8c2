"""The mini model's data: tokenizer, seeded MIDI, FluidSynth rendering and the acceptance measures."""

import random
import shutil

import mido
import numpy as np
import pytest

from restyle.engine.errors import RestyleError
from restyle.engine.mini.acceptance import chroma_correlation, log_mel_distance
from restyle.engine.mini.architecture import MINI_SPECTROGRAM, build_tokenizer
from restyle.engine.mini.melodies import melody, phrase, to_midi
from restyle.engine.mini.corpus import corpus_words, effect_caption, recording_caption, training_instruments
from restyle.engine.mini.render import HELD_OUT, INSTRUMENTS, instrument, render_notes
from restyle.engine.spectrogram import SpectrogramConverter
from signals import chord
from signals import melody as synth_melody

needs_fluidsynth = pytest.mark.skipif(shutil.which("fluidsynth") is None,
                                      reason="FluidSynth is not installed (apt install fluidsynth fluid-soundfont-gm)")


def test_every_caption_word_and_the_placeholder_are_single_tokens():
    captions = [inst.name for inst in training_instruments()] + ["piano and violin", "distorted piano with reverb"]
    tokenizer = build_tokenizer(corpus_words(captions))
    for inst in training_instruments():
        assert len(tokenizer.tokenize(inst.name)) == len(inst.name.split()), inst.name
    assert tokenizer.tokenize("*") == ["*</w>"]
    assert tokenizer.tokenize("music") == ["music"]  # the style module's initial word
    assert tokenizer.tokenize("musical") == list("musica") + ["l</w>"]  # other words fall back to characters


def test_melodies_are_reproducible_from_their_seed_and_differ_between_streams():
    first, again = (melody(random.Random("heldout-0-accordion-0"), 5.0) for _ in range(2))
    other = melody(random.Random("train-0-accordion"), 5.0)
    assert first == again
    assert first != other
    assert all(60 <= n.pitch <= 79 and n.start + n.duration <= 5.0 + 1e-9 for n in first)


def test_midi_keeps_note_times_and_the_program():
    notes = phrase(random.Random(3), 4.0, 48, 84)
    midi = to_midi([notes], program=21)
    messages = list(midi)  # mido yields messages with times in seconds
    assert any(m.type == "program_change" and m.program == 21 for m in messages)
    starts, now = [], 0.0
    for message in messages:
        now += message.time
        if message.type == "note_on":
            starts.append(now)
    assert np.allclose(starts, sorted(n.start for n in notes), atol=1.1e-3)  # ticks are 1/960 s
    assert isinstance(midi, mido.MidiFile)


def test_unknown_instrument_is_one_clear_error():
    with pytest.raises(RestyleError, match="Unknown instrument 'kazoo'"):
        instrument("kazoo")


@needs_fluidsynth
def test_fluidsynth_renders_a_melody_at_the_models_rate(tmp_path):
    import soundfile as sf

    notes = melody(random.Random(1), 2.0)
    path = render_notes(notes, instrument("accordion"), tmp_path / "a.wav", MINI_SPECTROGRAM.sample_rate, 2.0)
    audio, rate = sf.read(str(path))
    assert rate == MINI_SPECTROGRAM.sample_rate
    assert len(audio) == 2 * rate
    assert np.abs(audio).max() > 0.01
    assert not list(tmp_path.glob(".*partial*"))


def test_distance_and_chroma_measures_tell_same_from_different():
    rate = MINI_SPECTROGRAM.sample_rate
    converter = SpectrogramConverter(MINI_SPECTROGRAM)
    a = synth_melody([261.6, 329.6, 392.0, 523.3], 2.0, rate)
    b = synth_melody([293.7, 370.0, 440.0, 587.3], 2.0, rate)
    assert log_mel_distance(a, a, converter) == 0.0
    assert log_mel_distance(a, b, converter) > 1.0
    assert chroma_correlation(a, a, rate) == pytest.approx(1.0)
    assert chroma_correlation(a, b, rate) < 0.5
    assert chroma_correlation(a, chord([261.6], 2.0, rate), rate) < 0.9


def test_the_training_set_covers_every_program_but_the_held_out_ones():
    names = {inst.name for inst in training_instruments()}
    assert len(INSTRUMENTS) == 129  # 128 General MIDI programs and the drum kit
    assert len(HELD_OUT) >= 8 and not names & set(HELD_OUT)
    words = set(corpus_words(sorted(names)))
    assert not {"bassoon", "shamisen", "bagpipe", "koto", "ocarina"} & words  # held-out names are never trained


def test_captions_say_what_is_heard():
    assert effect_caption("piano", ("distorted", "reverb")) == "distorted piano with reverb"
    assert effect_caption("flute", ("chorus", "reverb")) == "flute with chorus and reverb"
    from pathlib import Path

    assert recording_caption(Path("bd_haus.flac")) == "kick drum recording"
    assert recording_caption(Path("loop_amen.flac")) == "drum loop recording"
    assert recording_caption(Path("loop_tabla.flac")) is None  # a held-out family: acceptance group (c)
    assert recording_caption(Path("tabla_na.flac")) is None
    assert recording_caption(Path("guit_harmonics.flac")) is None
    assert recording_caption(Path("ambi_glass_hum.flac")) is None
