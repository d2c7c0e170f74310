"""Galleries: many transfers from one spec, planned as jobs, run into a store, shown as contact sheets.

    from gatys.gallery import Gallery
    gallery = Gallery.from_toml("examples/gallery.toml")
    print(gallery.plan("out/gallery").describe())
    gallery.run("out/gallery")

Modules, in the order a run walks through them: spec (the Gallery: contents × styles × losses ×
variants as jobs), plan (each job's status in the store, the time left), local and ray_backend
(the two backends, sharing one store), results (what a finished job reports), outputs (thumbnails,
contact sheets, index.html, rebuilt from the store).
"""
from .results import JobReport, Summary
from .spec import Gallery

__all__ = ["Gallery", "JobReport", "Summary"]
