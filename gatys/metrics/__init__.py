"""Measurements of a stylised picture that do not come from the objective: no network, only image processing.

  content_fidelity(output, content)      how much of the content's edge layout the output keeps (1 = all)
  luminance_ssim(output, content)        SSIM of the luminance at low resolution, a stricter second view
  copied_object_score(output, style)     how closely a large output patch matches one place of the style only
  find_copied_object(output, style)      the same, with where: both boxes, the style's scale, a heat map

COPY_THRESHOLD is where copied_object_score starts to mean "a piece of the style was copied whole": the
midpoint, rounded, between the highest score of the style's brushwork without objects (0.21) and the lowest
of a pasted, faded or rescaled face (0.57) on the constructed cases of benchmarks/copy_cases.py. It sees
near-rigid copies only: a face the optimiser re-synthesised, distorted, can score as low as brushwork.
Never imports the engine, the network, the config or the jobs.
"""
from __future__ import annotations

from .copying import CopyMatch, copied_object_score, find_copied_object
from .fidelity import content_fidelity, luminance_ssim

COPY_THRESHOLD = 0.4

__all__ = ["COPY_THRESHOLD", "CopyMatch", "content_fidelity", "copied_object_score", "find_copied_object",
           "luminance_ssim"]

# Judges outside VGG for loss-equivalence studies: palettes in CIELAB, textures as Portilla–Simoncelli statistics
# (texture needs the optional extra: pip install 'gatys[judge]'; plenoptic is imported only when used).
from .colour_stats import colour_distance_matrix, colour_statistics, srgb_to_lab  # noqa: E402
from .texture import texture_distance_matrix, texture_statistics  # noqa: E402

__all__ += ["colour_distance_matrix", "colour_statistics", "srgb_to_lab", "texture_distance_matrix",
            "texture_statistics"]
