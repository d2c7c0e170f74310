"""The fast paths: code that makes an evaluation quicker and changes no result beyond rounding.

Each module is a leaf: it imports torch and its siblings, never the engine, and has one caller
above it, where its plain fallback sits beside the call.

    cpu_layers   fused conv + ReLU (+ max-pool) on the CPU      caller vgg.py; plain: torch's conv, relu, pool
    winograd     F(4×4, 3×3) convolution for float32 on a CPU   caller cpu_layers; plain: the direct conv
    heap         keep freed feature maps mapped (glibc)         caller device.configure; plain: malloc as is
    cuda_graph   one evaluation captured and replayed on CUDA   caller engine.py, batch.py; plain: evaluate_eagerly
    lbfgs        L-BFGS step on the device, no host reads       caller optimize.py (the engine's only L-BFGS)
"""
