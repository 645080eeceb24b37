"""/patches and /spectrogram: counts from the real parameters, Whisper's exact front end."""

import numpy as np
import pytest


def test_patches_of_a_real_photo(ask):
    r = ask("/patches")
    assert r.data["patches"] == 196 and r.data["grid"] == [14, 14]
    assert r.data["values_per_patch"] == 768 and r.data["patch_matrix_shape"] == [196, 768]
    assert r.data["original_size"] == [512, 600] and r.figure is not None
    assert ask("/patches --size 384 --patch 16").data["patches"] == 576
    assert ask("/patches --size 448 --patch 14").data["patches"] == 1024


@pytest.mark.parametrize("line,words", [("/patches --size 100", "not a multiple"),
                                        ("/patches --patch 1", "at least"),
                                        ("/patches --size 5000", "at most"),
                                        ("/spectrogram --mels 64", "Choose one of"),
                                        ("/spectrogram --seconds 31", "at most")])
def test_bad_input_gets_a_clear_answer(ask, line, words):
    r = ask(line)
    assert r.error and words in r.text


def test_spectrogram_counts(ask):
    r = ask("/spectrogram --seconds 2")
    d = r.data
    assert (d["samples"], d["frames"], d["encoder_positions"]) == (480_000, 3000, 1500)
    assert d["filters_shape"] == [80, 201] and d["mel_shape"] == [80, 3000]
    assert abs(d["seconds_per_position"] - 0.02) < 1e-12
    assert ask("/spectrogram --mels 128").data["mel_shape"] == [128, 3000]


def test_log_mel_matches_an_independent_numpy_version(tutor):
    """Whisper's recipe (whisper/audio.py) written again with numpy's FFT: centred frames with
    reflect padding, periodic Hann window, power, last frame dropped, mel, log10, 8-decade floor."""
    from tutor.assets import WHISPER_MEL, package_file
    from tutor.builtin import multimodal as mm

    filters = np.load(package_file(WHISPER_MEL, tutor.settings.assets))["mel_80"]
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(16_000).astype(np.float32) * 0.1
    ours = mm.log_mel(audio, filters)

    padded = np.pad(audio, 200, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    frames = np.stack([padded[i:i + 400] * window for i in range(0, len(padded) - 400 + 1, 160)])
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).T[:, :-1]
    log_spec = np.log10(np.maximum(filters @ power, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    reference = (log_spec + 4.0) / 4.0
    assert ours.shape == reference.shape == (80, 100)
    assert np.allclose(ours, reference, atol=1e-4)


def test_whisper_mel_file_is_verified():
    from tutor.assets import WHISPER_MEL

    assert len(WHISPER_MEL.sha256) == 64
