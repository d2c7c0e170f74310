"""Loss-equivalence studies: do other style losses give the style Gram gives? (Li et al. 2017)

    from gatys.compare import Study
    result = Study("content.png", "style.jpg", "study", losses=["gram", "mmd-linear", "moments"],
                   seeds=3, match="gradient", budget=300, size=128).run()
    print("\\n".join(result.verdicts))

    from gatys.compare import PooledStudy       # several image pairs: a Study each, verdicts pooled
    pooled = PooledStudy([("cat.png", "starry.jpg"), ("astronaut.png", "scream.jpg")], "study", seeds=8).run()

Each loss × seed is a job in a Store under the study folder (resumable), and so are two controls
per seed (the first loss without style, and on a second painting: controls.py); every output is
scored by every loss (the cross-evaluation matrix, the controls its baseline rows); a style
distance that none of the losses computes gives each pair of losses an effect (between-loss minus
seed-to-seed distance), a paired permutation test (labels swapped within seeds, Holm-corrected over
the pairs) and a bootstrap interval; `different`, `equivalent` (the interval inside a margin, a
fraction of the reference painting's effect) or `inconclusive` follow; the Gram/MMD identities are
measured on the study's own features; and report.html, grid.png, cross.csv, pairs.csv and
study.json are written in the folder.

Modules: settings (what a study is), frames (gatys and li2017 objectives as run settings),
calibrate (--match), controls, scoring (the matrix), equivalence (the style distance), verdicts
(the statistics), identities, progress (bar, lines, the clock budget), result, report (the files),
study (the steps), pooled (several image pairs).
"""
from .frames import LI2017_LOSSES
from .settings import (DEFAULT_ALPHA, DEFAULT_BUDGET, DEFAULT_LOSSES, DEFAULT_MARGIN, DEFAULT_SEEDS, FRAMES, MATCHES,
                       StudySettings, parse_losses)
from .pooled import PooledResult, PooledStudy
from .study import Study, StudyResult

__all__ = ["DEFAULT_ALPHA", "DEFAULT_BUDGET", "DEFAULT_LOSSES", "DEFAULT_MARGIN", "DEFAULT_SEEDS", "FRAMES",
           "LI2017_LOSSES", "MATCHES", "PooledResult", "PooledStudy", "Study", "StudyResult", "StudySettings",
           "parse_losses"]
