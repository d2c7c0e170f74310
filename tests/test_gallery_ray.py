"""The Ray backend on a local Ray (two CPUs, started once for the module): the same finished ids as
the local backend, the CLI's --backend ray, and a job that fails once retried until it succeeds."""
from __future__ import annotations

import functools
import socket
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import gatys
from gatys import Store
from gatys.cli import cli, main
from gatys.gallery import Gallery, JobReport

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'gatys[ray]'); .ci/run installs it")

from gatys.gallery.ray_backend import run_jobs  # noqa: E402  (after the skip: it needs ray)

SPEC = """\
contents = ["images/content.png", "images/style.png"]
styles = ["images/style.png", "images/style2.jpg"]
losses = ["gram", "moments"]

[defaults]
size = 32
iterations = 2
precision = "fp32"
device = "cpu"
"""


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module: starting it costs seconds, and each worker imports torch."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def spec(image_dir):
    folder = image_dir.parent / "ray-spec"
    folder.mkdir(exist_ok=True)
    (folder / "images").mkdir(exist_ok=True)
    for name in ("content.png", "style.png", "style2.jpg"):
        (folder / "images" / name).write_bytes((image_dir / name).read_bytes())
    path = folder / "gallery.toml"
    path.write_text(SPEC)
    return path


def _finished(directory: Path) -> set[str]:
    return {result.id for result in Store(directory).finished()}


def test_ray_finishes_the_same_ids_as_the_local_backend(local_ray, spec, tmp_path):
    result = CliRunner().invoke(cli, ["gallery", str(spec), "-o", str(tmp_path / "ray"), "--backend", "ray"])
    assert result.exit_code == 0, result.output
    assert "running 8 on ray" in result.output and "gallery: 8 done, 0 failed, 0 skipped" in result.output
    local = Gallery.from_toml(spec).run(tmp_path / "local", progress=False)
    assert local.done == 8
    assert _finished(tmp_path / "ray") == _finished(tmp_path / "local") and len(_finished(tmp_path / "ray")) == 8
    for name in ("contact-sheet.png", "contact-sheet-gram.png", "contact-sheet-moments.png", "index.html"):
        assert (tmp_path / "ray" / name).is_file()
    again = CliRunner().invoke(cli, ["gallery", str(spec), "-o", str(tmp_path / "ray"), "--backend", "ray"])
    assert "nothing to do: 8 of 8 done" in again.output


def test_ray_tasks_of_batches_finish_the_same_ids(local_ray, spec, tmp_path):
    """--batch 4 on Ray: a task per content's four jobs (one size), the same ids as one job per task."""
    result = CliRunner().invoke(cli, ["gallery", str(spec), "-o", str(tmp_path / "ray"), "--backend", "ray",
                                      "--batch", "4"])
    assert result.exit_code == 0, result.output
    assert "gallery: 8 done, 0 failed, 0 skipped" in result.output
    assert _finished(tmp_path / "ray") == {job.job.id for job in Gallery.from_toml(spec).jobs}


def test_an_address_where_nothing_listens_is_one_line_before_any_work(spec, tmp_path, capsys):
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SystemExit) as exit_info:
        main(["gallery", str(spec), "-o", str(tmp_path / "out"), "--backend", "ray", "--address", f"127.0.0.1:{port}"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"gatys: error: cannot reach the Ray cluster at 127.0.0.1:{port}: ")
    assert not (tmp_path / "out").exists()


class FlakyTransfer(gatys.Transfer):
    """Fails its first run while the marker file exists (and removes it): a fault a retry mends."""

    def __init__(self, marker: str, attempts: str):
        super().__init__()
        self.marker, self.attempts = Path(marker), Path(attempts)

    def run_batch(self, runs, callbacks=None):
        with self.attempts.open("a") as log:
            log.write("attempt\n")
        if self.marker.exists():
            self.marker.unlink()
            raise OSError("flaky storage: try again")
        return super().run_batch(runs, callbacks)


def test_a_job_that_fails_once_is_retried_and_succeeds(local_ray, spec, tmp_path):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this file
    marker, attempts = tmp_path / "fail-once", tmp_path / "attempts"
    marker.touch()
    job = Gallery.from_toml(spec).jobs[0].job
    reports = run_jobs(tmp_path / "store", [job],
                       make_transfer=functools.partial(FlakyTransfer, str(marker), str(attempts)))
    assert reports == [JobReport(job.id, "done", None, reports[0].seconds)]
    assert not marker.exists() and attempts.read_text().count("attempt") == 2
    store = Store(tmp_path / "store")
    assert store.status(job) == "done" and list(store.failures()) == []  # the failed try's record is gone


def test_a_job_that_keeps_failing_is_recorded_once_its_retries_are_spent(local_ray, spec, tmp_path):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    job = Gallery.from_toml(spec).jobs[0].job
    attempts = tmp_path / "attempts"

    reports = run_jobs(tmp_path / "store", [job], make_transfer=functools.partial(
        AlwaysFailing, str(attempts)))
    assert reports[0].status == "failed" and reports[0].error == "OSError: the disk is gone"
    assert attempts.read_text().count("attempt") == 3  # the first try and two retries
    assert Store(tmp_path / "store").status(job) == "failed"


class AlwaysFailing(gatys.Transfer):
    def __init__(self, attempts: str):
        super().__init__()
        self.attempts = Path(attempts)

    def run_batch(self, runs, callbacks=None):
        with self.attempts.open("a") as log:
            log.write("attempt\n")
        raise OSError("the disk is gone")
