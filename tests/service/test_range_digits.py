"""HTTP Range with absurdly long numbers: 416 or the clamped range, never a
500 (int() refuses more than 4300 digits with a ValueError)."""

from __future__ import annotations

import pytest

from app.problems import Problem
from app.ranges import parse_range

MANY = "9" * 5000


@pytest.mark.parametrize("header", [f"bytes={MANY}-", f"bytes={MANY}-{MANY}",
                                    f"bytes=1{'0' * 30}-"])
def test_a_first_byte_past_every_file_is_416(header: str) -> None:
    with pytest.raises(Problem) as err:
        parse_range(header, 100)
    assert err.value.status == 416 and err.value.headers == {"Content-Range": "bytes */100"}
    assert len(err.value.detail) < 300  # the header is not echoed in full


@pytest.mark.parametrize(("header", "want"), [
    (f"bytes=10-{MANY}", (10, 99)),  # last past the end: clamped (RFC 9110 §14.1.2)
    (f"bytes=-{MANY}", (0, 99)),  # a suffix longer than the file: all of it
    (f"bytes={'0' * 5000}7-{'0' * 5000}9", (7, 9)),  # leading zeros are still numbers
])
def test_long_numbers_still_parse(header: str, want: tuple[int, int]) -> None:
    assert parse_range(header, 100) == want
