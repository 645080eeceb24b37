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


# ---- the learner's own image and sound (--file) ------------------------------------------------

def test_patches_of_an_uploaded_image(ask, tmp_path):
    from PIL import Image

    path = tmp_path / "stripes.png"
    pixels = np.zeros((300, 400, 3), dtype=np.uint8)
    pixels[:, ::20] = 255
    Image.fromarray(pixels).save(path)
    r = ask(f"/patches --size 224 --patch 32 --file {path}")
    assert not r.error, r.text
    assert r.data["original_size"] == [400, 300] and r.data["patches"] == 49
    assert "stripes.png" in r.data["image"] and r.figure is not None
    assert all(f"--file {path}" in b for b in r.buttons)  # variations keep the learner's image


def test_resampling_keeps_a_tone_and_its_length(tutor):
    from tutor.builtin import multimodal as mm

    t = np.arange(44_100) / 44_100
    out = mm.resample(np.sin(2 * np.pi * 440 * t), 44_100)
    assert len(out) == 16_000
    reference = np.sin(2 * np.pi * 440 * np.arange(16_000) / 16_000)
    assert np.abs(out[1000:15000] - reference[1000:15000]).max() < 1e-3


def _tone(seconds, rate):
    t = np.arange(int(seconds * rate)) / rate
    return (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize("suffix", ["wav", "flac", "mp3"])
def test_spectrogram_of_an_uploaded_recording(ask, tmp_path, suffix):
    import soundfile

    path = tmp_path / f"a440.{suffix}"
    stereo = np.stack([_tone(2.0, 44_100)] * 2, axis=1)
    soundfile.write(str(path), stereo, 44_100)
    r = ask(f"/spectrogram --file {path}")
    assert not r.error, r.text
    d = r.data
    assert (d["samples"], d["frames"], d["encoder_positions"]) == (480_000, 3000, 1500)
    assert "a440" in d["sound"] and "44,100 Hz" in d["sound"] and "2 channels" in d["sound"]
    assert abs(d["seconds"] - 2.0) < 0.06  # mp3 adds a few frames of padding
    # a 440 Hz tone: the loudest mel band is the same as for a tone made at 16 kHz directly
    spec_peak = np.argmax(r.figure.axes[0].images[0].get_array()[:, :150].mean(axis=1))
    assert 5 <= spec_peak <= 25, spec_peak


@pytest.mark.parametrize("name,content,words", [
    ("notes.txt", b"hello", "is not a sound file"),
    ("long.wav", None, "at most 30 s"),
    ("broken.wav", b"RIFF....not really a wave", "could not be read as audio"),
    ("short.wav", "short", "too short"),
])
def test_bad_recordings_get_a_clear_answer(ask, tmp_path, name, content, words):
    import soundfile

    path = tmp_path / name
    if content is None:
        soundfile.write(str(path), _tone(31, 8_000), 8_000)
    elif content == "short":
        soundfile.write(str(path), _tone(0.01, 16_000), 16_000)
    else:
        path.write_bytes(content)
    r = ask(f"/spectrogram --file {path}")
    assert r.error and words in r.text, r.text


@pytest.mark.parametrize("name,content,words", [
    ("photo.svg", b"<svg/>", "is not an image"),
    ("photo.png", b"not a png at all", "could not be read as an image"),
    ("missing.png", None, "No file at"),
])
def test_bad_images_get_a_clear_answer(ask, tmp_path, name, content, words):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    r = ask(f"/patches --file {path}")
    assert r.error and words in r.text, r.text


def test_a_file_outside_the_upload_folders_is_refused(ask):
    r = ask("/patches --file /etc/hostname")
    assert r.error and "outside the folders uploads come from" in r.text
