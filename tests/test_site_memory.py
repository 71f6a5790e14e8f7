"""The per-site nearest-neighbour memory of online serving: the vote on known cases, the ring bound and
bad settings (what it shares with the site prior is in test_site_learners.py)."""

from __future__ import annotations

import pytest
import torch

from wmlm.deploy.site_memory import SiteMemory
from wmlm.errors import ConfigError


def _hidden(*rows: list[float]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_the_nearest_windows_vote_and_the_blend_keeps_a_distribution() -> None:
    memory = SiteMemory(future=2, k=2, temperature=0.01, beam_weight=0.0, weight=0.5)
    model = torch.full((2, 64), 1 / 64)
    query = memory.key(_hidden([1.0, 0.0]), torch.tensor([10]))[0]
    assert memory.vote(query) is None and torch.equal(memory.blend(query, model), model)
    keys = memory.key(_hidden([1.0, 0.0], [0.9, 0.1], [-1.0, 0.0]), torch.tensor([10, 10, 10]))
    memory.add(keys, torch.tensor([[5, 6], [5, 7], [40, 41]]))
    vote = memory.vote(query)
    assert vote is not None
    # the two nearest vote, the opposite key does not; at a low temperature the nearest dominates
    assert vote[0, 5] == pytest.approx(1.0) and vote[0, 40] == 0
    second = 0.9 / (0.9**2 + 0.1**2) ** 0.5  # cosine of the second key
    near = torch.tensor([1.0, second]).div(0.01).softmax(0)
    assert vote[1, 6] == pytest.approx(float(near[0])) and vote[1, 7] == pytest.approx(float(near[1]))
    assert vote[1, 41] == 0 and vote[1, 6] > vote[1, 7]
    blended = memory.blend(query, model)
    assert torch.allclose(blended.sum(-1), torch.ones(2))
    assert blended[0, 5] == pytest.approx(0.5 + 0.5 / 64)


def test_the_beam_now_separates_windows_with_the_same_hidden_state() -> None:
    memory = SiteMemory(future=1, k=1, beam_weight=3.0)
    hidden = _hidden([1.0, 0.0], [1.0, 0.0])
    memory.add(memory.key(hidden, torch.tensor([3, 60])), torch.tensor([[4], [59]]))
    near_60 = memory.vote(memory.key(_hidden([1.0, 0.0]), torch.tensor([58]))[0])
    assert near_60 is not None and int(near_60[0].argmax()) == 59


def test_the_memory_is_a_ring_of_capacity_windows() -> None:
    memory = SiteMemory(future=1, capacity=3, k=3, beam_weight=0.0)
    for beam in range(5):
        memory.add(memory.key(_hidden([1.0, 0.0]), torch.tensor([0])), torch.tensor([[beam]]))
    assert len(memory) == 3
    vote = memory.vote(memory.key(_hidden([1.0, 0.0]), torch.tensor([0]))[0])
    assert vote is not None and set(vote[0].nonzero().flatten().tolist()) == {2, 3, 4}  # the oldest went
    memory.add(
        memory.key(_hidden(*[[1.0, 0.0]] * 7), torch.zeros(7, dtype=torch.long)), torch.arange(7)[:, None]
    )
    assert len(memory) == 3
    vote = memory.vote(memory.key(_hidden([1.0, 0.0]), torch.tensor([0]))[0])
    assert vote is not None and set(vote[0].nonzero().flatten().tolist()) == {
        4,
        5,
        6,
    }  # the last of a batch win


def test_bad_memory_settings_fail_clearly() -> None:
    with pytest.raises(ConfigError, match="0 < weight <= 1"):
        SiteMemory(future=3, weight=1.5)
    with pytest.raises(ConfigError, match="k >= 1"):
        SiteMemory(future=3, k=0)
    memory = SiteMemory(future=3)
    with pytest.raises(ValueError, match=r"future beams \[N, 3\]"):
        memory.add(torch.zeros(2, 4), torch.zeros(2, 2, dtype=torch.long))
    memory.add(torch.zeros(2, 4), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="keys of width 5, memory holds 4"):
        memory.add(torch.zeros(1, 5), torch.zeros(1, 3, dtype=torch.long))
