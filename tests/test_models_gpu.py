"""The GPU path: SmolLM2 in bfloat16 on CUDA gives the same answers as float32 on CPU.

Skipped cleanly on machines without CUDA; on a GPU it also reports the memory the model takes.
"""

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

PROMPTS = ["The capital of France is", "def fibonacci(n):", "Once upon a time, a small robot"]


def test_smollm2_bfloat16_on_gpu_matches_float32_on_cpu(tutor, record_property):
    with tutor.model("smollm2-135m", device="cpu", dtype="float32") as cpu:
        batches = [cpu.tokenizer(p, return_tensors="pt").input_ids for p in PROMPTS]
        with torch.no_grad():
            reference = [cpu.model(ids).logits[0].float() for ids in batches]
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    with tutor.model("smollm2-135m", device="cuda", dtype="bfloat16") as gpu:
        assert gpu.device == "cuda" and next(gpu.model.parameters()).dtype == torch.bfloat16
        weights = torch.cuda.memory_allocated() - before
        with torch.no_grad():
            results = [gpu.model(ids.to("cuda")).logits[0].float().cpu() for ids in batches]
    peak = torch.cuda.max_memory_allocated() - before
    for ref, got in zip(reference, results):
        ref_lp, got_lp = ref.log_softmax(-1), got.log_softmax(-1)
        assert torch.equal(ref[-1].argmax(), got[-1].argmax())  # the same next token
        top = ref_lp.topk(10, dim=-1).indices  # the tokens that matter: compare their log-probs
        diff = (ref_lp.gather(-1, top) - got_lp.gather(-1, top)).abs().max().item()
        assert diff < 0.6, f"bfloat16 log-probs drift {diff:.3f} from float32"
        cosine = torch.nn.functional.cosine_similarity(ref, got, dim=-1).min().item()
        assert cosine > 0.99
    [row] = [r for r in tutor.models_overview() if r["id"] == "smollm2-135m"]
    on_gpu = [m for m in row["loaded"] if m["device"] == "cuda"]
    assert on_gpu and on_gpu[0]["dtype"] == "bfloat16"
    assert abs(on_gpu[0]["memory_bytes"] - weights) < 64 * 2**20  # the cache counts what CUDA holds
    record_property("gpu_weights_mb", round(weights / 2**20, 1))
    record_property("gpu_peak_mb", round(peak / 2**20, 1))
    print(f"smollm2 bfloat16 on {torch.cuda.get_device_name()}: weights {weights / 2**20:.0f} MiB, "
          f"peak during 3 forwards {peak / 2**20:.0f} MiB")
