"""/patches and /spectrogram: how an image and a sound become a sequence a transformer reads.

/patches cuts a real photograph (matplotlib's sample image of Grace Hopper, public domain, or
the learner's own upload with --file) into the square patches a Vision Transformer embeds, one
patch = one position. /spectrogram runs Whisper's front end on a synthetic tone or the learner's
own recording (--file: wav, mp3 or flac, at most 30 s): 16 kHz audio -> short-time Fourier
transform (400-sample window, hop 160) -> Whisper's own 80 mel filters (mel_filters.npz from the
openai-whisper package, sha256-verified) -> log scale; then the encoder's two convolutions (the
second with stride 2) halve the frames. Every number in `data` is computed from these
parameters, not typed in.
"""

from __future__ import annotations

import shlex
from typing import Annotated, Literal

import numpy as np

from tutor import Arg, File, Reply, Table, ToolError, hookimpl

# Whisper's audio constants (openai-whisper, whisper/audio.py).
SAMPLE_RATE, N_FFT, HOP, CHUNK_SECONDS = 16_000, 400, 160, 30
IMAGE_TYPES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")
AUDIO_TYPES = (".wav", ".mp3", ".flac")
MAX_PIXELS = 40_000_000  # a bigger image is refused before it is decoded (a "decompression bomb")


def _image(ctx, file: str | None):
    """(the image as RGB, what it is): the learner's upload, or the sample photo."""
    if not file:
        return _photo(), "grace_hopper.jpg (matplotlib sample data)"
    from PIL import Image, UnidentifiedImageError

    path = ctx.upload_path(file, IMAGE_TYPES, "an image")
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise ToolError(f"{path.name} is {im.width} x {im.height} pixels; the limit is "
                                f"{MAX_PIXELS / 1e6:.0f} megapixels. Send a smaller image.")
            im.seek(0)  # a GIF or WebP animation: its first frame
            return im.convert("RGB"), f"{path.name} (your upload)"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ToolError(f"{path.name} could not be read as an image ({type(e).__name__}). "
                        "Send a PNG, JPEG, GIF, WebP or BMP file.") from None


def _photo():
    """The sample photograph matplotlib ships (512 x 600 pixels, RGB)."""
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return Image.open(f).convert("RGB")


def patches(ctx, *, size: Annotated[int, Arg("side the image is resized to, in pixels", min=16, max=1024)] = 224,
            patch: Annotated[int, Arg("side of one square patch, in pixels", min=2, max=256)] = 16,
            file: Annotated[File | None, Arg("your own image (png, jpg, gif, webp, bmp); a sample photo "
                                             "when left out", accept=IMAGE_TYPES)] = None) -> Reply:
    """Cut a real photo (or your own, --file) into Vision Transformer patches and count the positions.

    ViT-Base/16 resizes to 224 x 224 and cuts 16 x 16 patches: each patch's 16 x 16 x 3 pixel
    values are flattened and projected to one embedding, like a token's embedding in a text model.
    """
    if size % patch:
        raise ToolError(f"--size {size} is not a multiple of --patch {patch}, so the patches would not tile "
                        f"the image. Try --size {size - size % patch or patch} or a patch that divides {size}.")
    from matplotlib.figure import Figure  # not pyplot: it would keep every figure, shared by all learners

    image, label = _image(ctx, file)
    again = f" --file {shlex.quote(file)}" if file else ""  # the offered variations keep the learner's image
    original = image.size
    pixels = np.asarray(image.resize((size, size)), dtype=np.float32) / 255.0
    grid = size // patch
    # (H, W, C) -> (grid, patch, grid, patch, C) -> (grid*grid, patch*patch*C): one row per patch
    rows = pixels.reshape(grid, patch, grid, patch, 3).transpose(0, 2, 1, 3, 4).reshape(grid * grid, -1)
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    ax.imshow(pixels)
    for k in range(1, grid):
        ax.axhline(k * patch - 0.5, color="white", lw=0.6)
        ax.axvline(k * patch - 0.5, color="white", lw=0.6)
    ax.set_title(f"{grid} x {grid} = {grid * grid} patches of {patch} x {patch} px")
    ax.axis("off")
    data = {"image": label, "original_size": list(original),
            "image_size": size, "patch_size": patch, "grid": [grid, grid], "patches": grid * grid,
            "values_per_patch": patch * patch * 3, "channels": 3, "positions_with_cls": grid * grid + 1,
            # self-attention scores every pair of positions: the cost grows with patches squared
            "attention_pairs": (grid * grid) ** 2,
            "patch_matrix_shape": list(rows.shape)}
    text = (f"The {'photo' if not file else 'image'} {label} ({original[0]} x {original[1]} px) resized to {size} x {size} and cut into "
            f"**{grid} x {grid} = {grid * grid} patches** of {patch} x {patch} pixels. Each patch is "
            f"{patch} x {patch} x 3 = {patch * patch * 3:,} numbers, flattened and projected to one embedding "
            f"vector; with ViT's extra [CLS] position the encoder reads {grid * grid + 1} positions.")
    return Reply(text=text, figure=fig, data=data,
                 buttons=[f"/patches --size {size} --patch {max(2, patch * 2)}{again}", f"/patches --size 384 --patch 16{again}"])


def log_mel(audio: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Whisper's log-mel spectrogram (same steps as whisper.audio.log_mel_spectrogram)."""
    import torch

    x = torch.from_numpy(audio.astype(np.float32))
    stft = torch.stft(x, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)
    power = stft[..., :-1].abs() ** 2  # Whisper drops the last frame
    mel = torch.from_numpy(filters) @ power
    log_spec = torch.clamp(mel, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)  # an 80 dB floor below the loudest bin
    return ((log_spec + 4.0) / 4.0).numpy()


CONV_KERNEL, CONV2_STRIDE = 3, 2  # Whisper's AudioEncoder: conv1 (kernel 3, stride 1), conv2 (kernel 3, stride 2)


def _conv_out(length: int, kernel: int = CONV_KERNEL, stride: int = 1, padding: int = 1) -> int:
    return (length + 2 * padding - kernel) // stride + 1


def resample(x: np.ndarray, rate: int) -> np.ndarray:
    """Band-limited resampling to 16 kHz through the FFT (as scipy.signal.resample does): keep
    the frequencies both rates can hold, drop the rest, transform back at the new length."""
    n = int(round(len(x) * SAMPLE_RATE / rate))
    spectrum = np.fft.rfft(x)
    kept = np.zeros(n // 2 + 1, dtype=complex)
    m = min(len(kept), len(spectrum))
    kept[:m] = spectrum[:m]
    return (np.fft.irfft(kept, n) * (n / len(x))).astype(np.float32)


def _sound(ctx, file: str | None, seconds: float) -> tuple[np.ndarray, str, float]:
    """(16 kHz mono samples, what they are, seconds): the learner's recording, or a test tone."""
    if not file:
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        freq = 200 + 1800 * t / max(seconds, 1e-9)  # a tone rising from 200 Hz to 2 kHz
        phase = 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE
        return sum(0.3 / k * np.sin(k * phase) for k in (1, 2, 3)), "synthetic rising tone", seconds
    import soundfile

    path = ctx.upload_path(file, AUDIO_TYPES, "a sound file")
    try:
        info = soundfile.info(str(path))
        if info.duration > CHUNK_SECONDS:
            raise ToolError(f"{path.name} is {info.duration:.1f} s long; Whisper's encoder reads {CHUNK_SECONDS} s "
                            f"at a time. Send a clip of at most {CHUNK_SECONDS} s.")
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except soundfile.LibsndfileError as e:
        raise ToolError(f"{path.name} could not be read as audio ({e}). Send a wav, mp3 or flac file.") from None
    if len(audio) < N_FFT:
        raise ToolError(f"{path.name} is {len(audio) / rate * 1000:.0f} ms long, too short for one "
                        f"{1000 * N_FFT / SAMPLE_RATE:g} ms window. Send at least a tenth of a second.")
    mono = audio.mean(axis=1)  # Whisper hears one channel
    if rate != SAMPLE_RATE:  # Whisper's front end expects 16 kHz
        mono = resample(mono, rate)
    return mono, f"{path.name} (your upload, {rate:,} Hz, {info.channels} channel{'s' * (info.channels > 1)})", \
        len(audio) / rate


def spectrogram(ctx, *, seconds: Annotated[float, Arg("length of the test sound, in seconds", min=0.1, max=30)] = 5.0,
                mels: Annotated[Literal["80", "128"], Arg("mel bands: 80 (Whisper up to large-v2) or 128 (large-v3)")]
                = "80",
                file: Annotated[File | None, Arg("your own recording (wav, mp3 or flac, at most 30 s); a test "
                                                 "tone when left out", accept=AUDIO_TYPES)] = None) -> Reply:
    """Run Whisper's log-mel front end on a test sound (or yours, --file) and count the encoder positions.

    The test sound is synthetic (a rising tone with a few harmonics), labelled as such; Whisper
    pads or trims every input to 30 s, so the positions do not depend on how long the sound is.
    """
    from matplotlib.figure import Figure  # not pyplot: it would keep every figure, shared by all learners

    from tutor.assets import WHISPER_MEL, package_file

    mels = int(mels)
    sound, label, seconds = _sound(ctx, file, seconds)
    path = package_file(WHISPER_MEL, ctx.settings.assets)
    with np.load(path) as f:
        filters = f[f"mel_{mels}"]
    padded = np.zeros(CHUNK_SECONDS * SAMPLE_RATE, dtype=np.float32)  # pad to Whisper's 30 s window
    padded[: len(sound)] = sound[: len(padded)]
    spec = log_mel(padded, filters)
    frames = spec.shape[1]
    positions = _conv_out(_conv_out(frames), stride=CONV2_STRIDE)  # conv1 stride 1, conv2 stride 2 (kernel 3, pad 1)
    fig = Figure(figsize=(8, 3))
    ax = fig.add_subplot()
    ax.imshow(spec, origin="lower", aspect="auto", cmap="magma")
    ax.set_xlabel(f"frame (one per {HOP} samples = {1000 * HOP / SAMPLE_RATE:g} ms)")
    ax.set_ylabel("mel band")
    ax.set_title(f"log-mel spectrogram, {mels} x {frames} ({label}, {seconds:g} s, padded to 30 s)")
    data = {"sample_rate": SAMPLE_RATE, "n_fft": N_FFT, "hop_length": HOP, "window_seconds": CHUNK_SECONDS,
            "samples": len(padded), "n_mels": mels, "frames": frames, "mel_shape": list(spec.shape),
            "filters_shape": list(filters.shape), "encoder_positions": positions,
            "seconds_per_position": CHUNK_SECONDS / positions, "sound": label, "seconds": round(seconds, 3),
            "window_ms": 1000 * N_FFT / SAMPLE_RATE, "hop_ms": 1000 * HOP / SAMPLE_RATE,
            "ms_per_position": 1000 * CHUNK_SECONDS / positions, "conv_kernel": CONV_KERNEL, "conv2_stride": CONV2_STRIDE}
    table = Table(["stage", "length"], [["samples (30 s at 16 kHz)", f"{len(padded):,}"],
                                        [f"frames (hop {HOP})", f"{frames:,}"],
                                        ["after conv1 (stride 1)", f"{_conv_out(frames):,}"],
                                        ["after conv2 (stride 2) = encoder positions", f"{positions:,}"]])
    text = (f"Whisper's front end on {label}, {seconds:g} s, padded to 30 s: {len(padded):,} samples "
            f"-> **{mels} mel bands x {frames:,} frames** -> **{positions:,} encoder positions** "
            f"({1000 * CHUNK_SECONDS / positions:g} ms of audio each).")
    return Reply(text=text, figure=fig, table=table, data=data)


@hookimpl
def register_tools(register):
    register(patches, example="/patches --size 224 --patch 16",
             phrases=['patches', 'vision transformer', 'image|picture|photo into', 'into patches'])
    register(spectrogram, example="/spectrogram --seconds 5",
             phrases=['spectrogram', 'log-mel', 'mel bands', 'audio front end'])
