"""The billing arithmetic of bench.cost, against figures worked out by hand."""

from __future__ import annotations

import pytest

from bench import pricing
from bench.pricing import Invocation


@pytest.mark.parametrize(("run_ms", "units"), [
    (1, 1), (100, 1), (100.001, 2), (1199.999, 12), (1200, 12), (1200.001, 13), (1201, 13),
    (1250, 13)])
def test_express_duration_is_rounded_up_to_the_next_100_ms(run_ms: float, units: int) -> None:
    assert pricing.express_units(run_ms) == units


@pytest.mark.parametrize(("memory", "billed"), [(1, 64), (64, 64), (65, 128), (200, 256)])
def test_express_memory_is_billed_in_64_mb_chunks(memory: int, billed: int) -> None:
    assert pricing.express_memory_mb(memory) == billed


def test_an_express_run_of_1_2_s_at_64_mb() -> None:
    # 12 units x 0.1 s x 64/1024 GB = 0.075 GB-s; x 0.0000166667 = USD 1.25000025e-6,
    # plus the request's USD 1e-6.
    assert pricing.per_million(pricing.express_usd(1200)) == pytest.approx(2.25000025)
    # 1,250 ms: 13 units, 0.08125 GB-s.
    assert pricing.per_million(pricing.express_usd(1250)) == pytest.approx(
        1 + 0.08125 * 16.6667)


def test_lambda_bills_each_invocation_rounded_up_to_1_ms() -> None:
    assert pricing.lambda_billed_ms(12.3) == 13
    assert pricing.lambda_billed_ms(12.0) == 12
    assert pricing.lambda_billed_ms(0.2) == 1
    # 13 ms x 512/1024 GB = 0.0065 GB-s; x 0.0000166667 = 1.0833355e-7; + 2e-7 a request.
    one = pricing.lambda_usd([Invocation(12.3, 512)])
    assert pricing.per_million(one) == pytest.approx(0.30833355)
    three = pricing.lambda_usd([Invocation(12.3, 512)] * 2 + [Invocation(40, 128)])
    # 40 ms x 0.125 GB = 0.005 GB-s: 0.0833335 + 0.2.
    assert pricing.per_million(three) == pytest.approx(2 * 0.30833355 + 0.2833335)


def test_standard_and_temporal_are_per_unit() -> None:
    assert pricing.per_million(pricing.standard_usd(5)) == pytest.approx(125)
    assert pricing.per_million(pricing.temporal_usd(5, "entry")) == pytest.approx(250)
    assert pricing.per_million(pricing.temporal_usd(5, "lowest published")) == pytest.approx(
        125)
