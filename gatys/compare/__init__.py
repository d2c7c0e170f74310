"""Loss-equivalence studies: do other style losses give the style Gram gives? (Li et al. 2017)

    from gatys.compare import Study
    result = Study("content.png", "style.jpg", "study", losses=["gram", "mmd-linear", "moments"],
                   seeds=3, match="gradient", budget=300, size=128).run()
    print("\\n".join(result.verdicts))

Each loss × seed is a job in a Store under the study folder (resumable); every output is
scored by every loss (the cross-evaluation matrix); a style distance that none of the losses
computes compares the losses' outputs with the seed-to-seed spread (ratio, permutation test,
a verdict in words); the Gram/MMD identities are measured on the study's own features; and
report.html, grid.png, cross.csv, pairs.csv and study.json are written in the folder.

Modules: settings (what a study is), frames (gatys and li2017 objectives as run settings),
calibrate (--match), scoring (the matrix), equivalence (style distance, permutation test, verdicts),
identities, progress (bar, lines, the clock budget), report (the files), study (the steps).
"""
from .frames import LI2017_LOSSES
from .settings import DEFAULT_BUDGET, DEFAULT_LOSSES, DEFAULT_SEEDS, FRAMES, MATCHES, StudySettings, parse_losses
from .study import Study, StudyResult

__all__ = ["DEFAULT_BUDGET", "DEFAULT_LOSSES", "DEFAULT_SEEDS", "FRAMES", "LI2017_LOSSES", "MATCHES", "Study",
           "StudyResult", "StudySettings", "parse_losses"]
