"""Lightning's verbs of the ``wmlm`` command (``fit/validate/test/predict``): ``WMLMCLI`` and ``run``.

Imported by ``wmlm.cli.main`` only when one of those verbs runs, so ``wmlm data``, ``wmlm plugins`` and
the other extra verbs start without importing Lightning (about 7 s on a 2-core machine).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.plugins.io import TorchCheckpointIO
from rich.console import Console

from wmlm.cli import EXTRA_VERBS
from wmlm.cli_checkpoints import LAST, apply_checkpoint_config, plain, resolve_last
from wmlm.errors import ConfigError
from wmlm.model.checkpoint_io import AtomicCheckpointIO
from wmlm.model.logger import use_run_logger
from wmlm.model.prediction_writer import PredictionWriter
from wmlm.report import comparison_table, results_table


class WMLMCLI(LightningCLI):
    """LightningCLI with wmlm defaults: subclass mode for model and data, and a test after ``fit``."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=True,
            help="after fit, test the best checkpoint on the data's test split and print the table",
        )
        parser.add_argument(
            "--test_baselines",
            type=list[str],
            default=[],
            help="after fit, also test these untrained baselines of wmlm.model.baselines (e.g. RepeatLastBeam, "
            "KinematicBaseline) on the same test windows and print them beside the model",
        )
        parser.add_argument(
            "--predictions_dir",
            type=str | None,
            default=None,
            help="predict: folder for the prediction CSVs (default: <run log dir>/predictions)",
        )

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        # atomic checkpoint files unless the user chose their own CheckpointIO
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        # run folders claimed atomically (two runs at once never share version_N) unless a logger was chosen
        use_run_logger(
            trainer, {**self._get(self.config_init, "trainer", default={}), **kwargs}.get("logger")
        )
        return trainer

    def _parse_ckpt_path(self) -> None:
        # replaces LightningCLI's: the checkpoint is read by wmlm's one safe reader, the classes it names are
        # checked before anything imports them, and options it overrides are reported
        if self.config.get("subcommand"):
            self.config = apply_checkpoint_config(
                self.config, self.parser.parse_object, self.config.subcommand
            )

    def _resolve_last(self) -> None:
        config = self.config_init[self.subcommand]
        if config.get("ckpt_path") == LAST:
            current = plain(self.config[self.subcommand])
            config["ckpt_path"] = resolve_last(Path(self.trainer.default_root_dir), current, self.subcommand)

    def before_fit(self) -> None:
        self._resolve_last()

    def before_validate(self) -> None:
        self._resolve_last()

    def before_test(self) -> None:
        self._resolve_last()

    def before_predict(self) -> None:
        self._resolve_last()
        writer = PredictionWriter(self.config[self.subcommand].get("predictions_dir"))
        writer.prepare(self.trainer)  # an unusable or non-empty folder is refused before the prediction pass
        self.trainer.callbacks.append(writer)

    def after_fit(self) -> None:
        if not self.config.get(self.subcommand, {}).get("test_after_fit", True):
            return
        if self.trainer.fast_dev_run or self.trainer.interrupted:
            return
        datamodule = self.datamodule
        datasets = getattr(datamodule, "datasets", {})
        if "test" in datasets and len(datasets["test"]) == 0:
            return
        checkpoint = self.trainer.checkpoint_callback
        ckpt_path = getattr(checkpoint, "best_model_path", "") or None
        results = self.trainer.test(self.model, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False)
        if not results or not self.trainer.is_global_zero:
            return
        # the path on a line of its own: a table title would wrap it mid-word on an 80-column terminal
        print(f"test results of {ckpt_path or 'the final weights'}:")
        Console().print(results_table(results[0], "test"))
        names = self.config[self.subcommand].get("test_baselines") or []
        if names:
            compared = {"wmlm": results[0]} | evaluate_baselines(names, datamodule, self.model, self.trainer)
            Console().print(comparison_table(compared))


def evaluate_baselines(
    names: list[str], datamodule: LightningDataModule, model: LightningModule, trainer: Trainer
) -> dict[str, dict[str, float]]:
    """Test metrics of untrained baselines (``wmlm.model.baselines``) on the datamodule's test windows.

    Each runs in a trainer of its own without a logger, so the model's run folder keeps only its own
    logs; their figures go to ``<run>/figures/<baseline>``.
    """
    from wmlm.model import baselines
    from wmlm.model.figures_callback import BeamFigures

    results = {}
    for name in names:
        cls = getattr(baselines, name, None)
        if not (isinstance(cls, type) and issubclass(cls, baselines.BeamBaseline)):
            raise ConfigError(f"test_baselines: {name!r} is not a baseline of wmlm.model.baselines")
        baseline = cls(future=getattr(model, "future", 3))
        figures = BeamFigures(png_dir=Path(trainer.log_dir or trainer.default_root_dir) / "figures" / name)
        tester = Trainer(
            accelerator="cpu",
            devices=1,
            logger=False,
            callbacks=[figures],
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=trainer.default_root_dir,
        )
        results[name] = {
            k: float(v) for k, v in tester.test(baseline, datamodule=datamodule, verbose=False)[0].items()
        }
    return results


def run(args: list[str] | None = None, exit_on_error: bool = True) -> WMLMCLI:
    """Parse ``args`` and run the Lightning subcommand; returns the CLI (its ``trainer``, ``model``, ...).

    ``exit_on_error=False`` makes a refused command line raise ``ArgumentError`` instead of printing the
    usage and exiting, so ``main`` can show the message alone.
    """
    return WMLMCLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        args=args,
        auto_configure_optimizers=False,
        parser_kwargs={
            "description": "wmlm: train and evaluate wireless-native multimodal models",
            "epilog": "other verbs (each with --help): " + ", ".join(f"wmlm {verb}" for verb in EXTRA_VERBS),
            "exit_on_error": exit_on_error,
        },
    )
