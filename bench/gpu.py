"""GPU figures, for a machine with CUDA: tokens/s of the local decoder and of model.generate
against the memory-bandwidth bound (bytes of weights read per token / measured copy
bandwidth), plus P4's ratios on the GPU. Skips cleanly (exit 0) where there is no GPU.

    python bench/gpu.py [--out results.jsonl]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import bench_generate  # noqa: E402
from report import Report, arguments  # noqa: E402


def main() -> None:
    args = arguments(__doc__).parse_args()
    if not torch.cuda.is_available():
        print("no CUDA GPU here: bench/gpu.py skipped (nothing to measure)")
        return
    if args.quick:
        bench_generate.NEW, bench_generate.REPEATS = 32, 2
    bench_generate.section("cuda", Report("gpu", args.out))


if __name__ == "__main__":
    main()
