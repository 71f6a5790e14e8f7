"""Mixed real + simulated training: ``data.mix_root`` windows only train, ``data.mix_share`` sets their share."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import write_scenario

from wmlm.cli import main
from wmlm.data.datamodule import DeepSenseDataModule
from wmlm.data.loader import SeededBatchSampler
from wmlm.errors import ConfigError, DataError

FIELDS = {"inputs": {"beam": "beam_power"}, "targets": {"beam": "beam_label"}}


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    """``(real root with two scenarios, mix root with three 'simulated' sites)``."""
    real, sim = tmp_path / "real", tmp_path / "sim"
    write_scenario(real / "scenario1", seed=1)
    write_scenario(real / "scenario2", seed=2, sequence_lengths=(15, 12, 14))
    for k in range(1, 4):
        write_scenario(sim / f"s0_site{k}", seed=10 + k, sequence_lengths=(20, 18, 22, 19, 21))
    return real, sim


def _module(real: Path, **kwargs: object) -> DeepSenseDataModule:
    module = DeepSenseDataModule(
        real, batch_size=4, val_fraction=0.25, test_fraction=0.25, **FIELDS, **kwargs
    )
    module.setup("fit")
    return module


def _scenario_ids(module: DeepSenseDataModule, split: str) -> set[str]:
    names = module.datasets[split].scenario_names
    return {names[int(i)] for batch in module._loader(split, False) for i in batch["scenario_id"]}


def test_mix_root_windows_train_and_never_validate_or_test(roots: tuple[Path, Path]) -> None:
    real, sim = roots
    plain, mixed = _module(real), _module(real, mix_root=sim)
    simulated = {"s0_site1", "s0_site2", "s0_site3"}
    assert simulated <= _scenario_ids(mixed, "train")
    assert not simulated & (_scenario_ids(mixed, "val") | _scenario_ids(mixed, "test"))
    # the real splits are the ones the module makes without a mix
    for split in ("val", "test"):
        assert len(mixed.datasets[split]) == len(plain.datasets[split])
    added = len(mixed.datasets["train"]) - len(plain.datasets["train"])
    assert added == mixed._mixed_tail > 0


def test_mix_share_sets_the_share_of_every_epoch(roots: tuple[Path, Path]) -> None:
    real, sim = roots
    module = _module(real, mix_root=sim, mix_share=0.25)
    own = len(module.datasets["train"]) - module._mixed_tail
    first = len(module.datasets["train"]) - module._mixed_tail
    torch.manual_seed(0)
    loader = module.train_dataloader()
    epochs = []
    for _ in range(2):
        order = [i for batch in loader.batch_sampler for i in batch]
        drawn = [i for i in order if i >= first]
        # every real window once, and a quarter of the epoch from the simulated pool
        assert sorted(i for i in order if i < first) == list(range(own))
        assert len(drawn) == round(own * 0.25 / 0.75)
        assert len(set(drawn)) == len(drawn)  # without replacement while the pool lasts
        epochs.append(drawn)
    assert epochs[0] != epochs[1]  # drawn afresh each epoch


def test_pool_smaller_than_its_share_repeats_only_after_every_window() -> None:
    sampler = SeededBatchSampler(10, batch_size=4, shuffle=True, seed=3, mixed_tail=3, mixed_per_epoch=7)
    order = [i for batch in sampler for i in batch]
    pool = [i for i in order if i >= 7]
    assert len(order) == 7 + 7 and len(sampler) == 4
    assert sorted(pool.count(i) for i in (7, 8, 9)) == [2, 2, 3]


def test_no_pool_keeps_the_old_order() -> None:
    """Without a pool the permutation is the one the loader always drew, so resumed runs stay identical."""
    sampler = SeededBatchSampler(11, batch_size=5, shuffle=True, seed=7)
    order = [i for batch in sampler for i in batch]
    expected = torch.randperm(11, generator=torch.Generator().manual_seed(7)).tolist()
    assert order == expected


def test_train_windows_counts_the_real_windows_only(roots: tuple[Path, Path]) -> None:
    real, sim = roots
    module = _module(real, mix_root=sim, train_windows=5)
    assert len(module.datasets["train"]) - module._mixed_tail == 5


def test_scenario_names_in_both_roots_are_refused(roots: tuple[Path, Path], tmp_path: Path) -> None:
    real, _ = roots
    clash = tmp_path / "clash"
    write_scenario(clash / "scenario2", seed=5)
    with pytest.raises(DataError, match=r"mix_root .* \['scenario2'\] that data.root"):
        _module(real, mix_root=clash)


@pytest.mark.parametrize("share", [0.0, 1.0, 1.5])
def test_impossible_shares_are_refused(roots: tuple[Path, Path], share: float) -> None:
    real, sim = roots
    with pytest.raises(ConfigError, match="data.mix_share must be in"):
        DeepSenseDataModule(real, mix_root=sim, mix_share=share)


def test_a_share_without_a_mix_root_is_refused_at_the_cli(
    roots: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real, _ = roots
    code = main(
        [
            "fit",
            "--config",
            "tests/conf/beam_gps.yaml",
            "--data.root",
            str(real),
            "--data.mix_share",
            "0.5",
            "--trainer.default_root_dir",
            str(tmp_path / "run"),
        ]
    )
    assert code == 2
    assert "data.mix_share must be in (0, 1) and needs data.mix_root" in capsys.readouterr().err
