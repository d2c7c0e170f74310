"""benchmarks/cuda_memory.py on the CPU: one peak per evaluation, and its cuDNN switch really reaches the engine."""
import torch

from benchmarks import cuda_memory


def test_one_peak_per_evaluation_with_the_search_switched_off():
    before = torch.backends.cudnn.benchmark
    try:
        torch.backends.cudnn.benchmark = True
        case = cuda_memory.peaks_by_evaluation(32, "fp32", search=False, graph=False, evaluations=3, device="cpu")
        assert torch.backends.cudnn.benchmark is False  # set after the engine's configure, which would set it on CUDA
    finally:
        torch.backends.cudnn.benchmark = before
    assert len(case["peaks"]) == 3 and all(peak["allocated"] > 0 for peak in case["peaks"])
    assert case["peaks"] == sorted(case["peaks"], key=lambda peak: peak["allocated"])  # a running maximum
