"""The benchmarks' own arithmetic: wrk's report read right, ID numbers distinct and valid."""

from __future__ import annotations

import pytest
from bench.http_load import parse_wrk
from bench.rows import citizen_id, region_codes

from sscard.core.ids import parse_id_number

WRK_REPORT = """Running 5s test @ http://127.0.0.1:8000
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    56.70ms   30.12ms    1.99s    70.00%
    Req/Sec    63.50     20.00   100.00     70.00%
  Latency Distribution
     50%  850.00us
     75%   70.00ms
     90%   90.00ms
     99%    1.99s
  630 requests in 5.00s, 200.00KB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 3
Requests/sec:    126.00
Transfer/sec:     40.00KB
"""


def test_wrk_report_is_read_with_its_units() -> None:
    found = parse_wrk(WRK_REPORT)
    assert found["requests"] == 630
    assert found["rps"] == pytest.approx(126.0)
    assert found["p50_ms"] == pytest.approx(0.85)
    assert found["p99_ms"] == pytest.approx(1990.0)
    assert found["non_2xx"] == 3
    assert found["socket_errors"] == 3


def test_id_1_generated_numbers_are_valid_and_distinct() -> None:
    regions = region_codes()
    assert len(regions) > 100  # Guangdong's counties, not one city
    numbers = [citizen_id(i, regions) for i in range(5000)]
    assert len(set(numbers)) == len(numbers)
    for number in numbers[:500]:
        assert parse_id_number(number).number == number
