"""gatys: optimization-based neural style transfer over VGG19 features.

    import gatys
    image = gatys.transfer("content.jpg", "style.jpg", size=256, iterations=300)   # a PIL image

    transfer = gatys.Transfer(gatys.TransferConfig(size=512))   # load the network once
    result = transfer.run("content.jpg", ["a.jpg", "b.jpg"], style_blend_weights=(0.7, 0.3))

    store = gatys.Store("results")                      # resumable: finished jobs are skipped
    outcome = store.run(transfer, gatys.Job("content.jpg", ["style.jpg"], gatys.TransferConfig(size=256)))
"""
from __future__ import annotations

from .config import TransferConfig
from .engine import Progress, Result, Transfer
from .errors import GatysError
from .images import load_image, save_image
from .jobs import Job, Outcome, run_job
from .store import Store

__version__ = "0.1.0"


def transfer(content, style, *, callback=None, **options):
    """Stylise content (a path, PIL image or tensor) with one or more styles; returns a PIL image.

    Options are TransferConfig fields (size, iterations, style_losses, …).
    """
    return Transfer(TransferConfig(**options)).run(content, style, callback=callback).to_pil()


__all__ = ["GatysError", "Job", "Outcome", "Progress", "Result", "Store", "Transfer", "TransferConfig", "load_image",
           "run_job", "save_image", "transfer"]
