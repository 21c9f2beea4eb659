"""The price table, model-name resolution, exact costs, and how costs and tokens are shown."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from artifacts_app.formatting import format_cost, format_tokens
from artifacts_app.pricing import PriceRow, PriceTable, calculate_cost

TABLE = PriceTable.load()
PROVIDERS = {"openai", "anthropic", "google", "mistral"}
# The example database would write .hypothesis/ into the working tree; these runs are cheap to redo.
PROPERTY_SETTINGS = settings(max_examples=200, database=None, deadline=None)


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
        ("mistral-large-2411", "mistral-large"),
        ("mistral-large-latest", "mistral-large"),
        ("models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("GPT-4o", "gpt-4o"),
        ("unknown-model", None),
        ("", None),
        ("gpt-4o-mini-foo", None),
        ("gpt-4", None),
        # Beyond the required examples: other prefixes, Bedrock ids, aliases, stacked suffixes.
        ("  openai/gpt-4o-mini  ", "gpt-4o-mini"),
        ("mistralai/mistral-small-2503", "mistral-small"),
        ("anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku"),
        ("us.anthropic.claude-3-7-sonnet-20250219-v1:0", "claude-3-7-sonnet"),
        ("eu.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("claude-sonnet-4-0", "claude-sonnet-4"),
        ("chatgpt-4o-latest", "gpt-4o-2024-05-13"),
        ("gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("gemini-2.0-flash-exp", "gemini-2.0-flash"),
        ("codestral-2501", "codestral"),
        ("gpt-4-0613", None),
        ("gpt-4o-audio-preview", None),
        ("claude-3-5-sonnet-20241022", None),
    ],
)
def test_resolve(name: str, family: str | None) -> None:
    assert TABLE.resolve(name) == family


def test_price_at_picks_the_row_in_force() -> None:
    old = TABLE.price_at("gpt-4o", date(2024, 6, 1))
    new = TABLE.price_at("gpt-4o-2024-08-06", date(2024, 11, 1))
    assert old is not None and new is not None
    assert (old.input_per_million, old.output_per_million) == (Decimal("5.00"), Decimal("15.00"))
    assert (new.input_per_million, new.output_per_million) == (Decimal("2.50"), Decimal("10.00"))
    # The day of the change is already the new price.
    assert TABLE.price_at("gpt-4o", date(2024, 10, 2)) == new
    # The snapshot that kept its launch price does not follow the family's cut.
    kept = TABLE.price_at("gpt-4o-2024-05-13", date(2025, 1, 1))
    assert kept is not None and kept.input_per_million == Decimal("5.00")


def test_price_at_uses_the_utc_date() -> None:
    # 23:30 on 1 Oct in New York is already 2 Oct in UTC, the day gpt-4o's price changed.
    new_york = timezone(timedelta(hours=-4))
    row = TABLE.price_at("gpt-4o", datetime(2024, 10, 1, 23, 30, tzinfo=new_york))
    assert row is not None and row.effective == date(2024, 10, 2)


def test_price_at_before_the_first_row_uses_the_earliest_row() -> None:
    row = TABLE.price_at("gpt-5", date(2025, 8, 6))
    assert row is not None and row.effective == date(2025, 8, 7)


def test_price_at_unknown_model_is_none() -> None:
    assert TABLE.price_at("unknown-model", date(2025, 1, 1)) is None


def test_unknown_or_empty_model_has_no_cost() -> None:
    assert calculate_cost("unknown-model", 10, 10, table=TABLE) is None
    assert calculate_cost("", 10, 10, table=TABLE) is None
    assert calculate_cost(None, 10, 10, table=TABLE) is None


def test_worked_example() -> None:
    # 1234 * 2.50 + 567 * 10.00 = 3085 + 5670 = 8755 dollars per million tokens.
    cost = calculate_cost("gpt-4o", 1234, 567, at=datetime(2024, 11, 1, tzinfo=UTC), table=TABLE)
    assert cost == Decimal("0.008755")
    assert cost is not None and cost.as_tuple().exponent == -12


def test_price_change_changes_the_cost() -> None:
    before = calculate_cost("gpt-4o", 1_000_000, 1_000_000, at=date(2024, 6, 1), table=TABLE)
    after = calculate_cost("gpt-4o", 1_000_000, 1_000_000, at=date(2024, 11, 1), table=TABLE)
    assert before == Decimal("20.00")
    assert after == Decimal("12.50")


def test_dated_name_is_priced_as_its_family() -> None:
    at = date(2025, 10, 1)
    assert calculate_cost("claude-sonnet-4-5-20250929", 1000, 2000, at=at, table=TABLE) == calculate_cost(
        "claude-sonnet-4-5", 1000, 2000, at=at, table=TABLE
    )
    # 1000 * 3 + 2000 * 15 = 33000 per million.
    assert calculate_cost("claude-sonnet-4-5-20250929", 1000, 2000, at=at, table=TABLE) == Decimal("0.033")


def test_ten_cheap_tokens_keep_their_cost() -> None:
    # 10 tokens at $0.05 per million is $0.0000005, well inside 12 places.
    cost = calculate_cost("gpt-5-nano", 10, 0, at=date(2025, 9, 1), table=TABLE)
    assert cost == Decimal("0.000000500000")
    assert cost is not None and cost.as_tuple() == Decimal("0.000000500000").as_tuple()


def test_cost_rounds_half_up_at_twelve_places() -> None:
    row = PriceRow("tiny", "openai", Decimal("0.0000005"), Decimal(0), date(2025, 1, 1))
    table = PriceTable([row])
    # 1 token * 0.0000005 / 1e6 = 5e-13: exactly half of the last place, so it rounds up.
    assert calculate_cost("tiny", 1, 0, at=date(2025, 1, 1), table=table) == Decimal("0.000000000001")


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10", None, 10.0])
def test_bad_token_counts_are_rejected(bad: Any) -> None:
    with pytest.raises(ValueError):
        calculate_cost("gpt-4o", bad, 0, table=TABLE)
    with pytest.raises(ValueError):
        calculate_cost("gpt-4o", 0, bad, table=TABLE)


def test_bad_token_counts_are_rejected_even_for_unknown_models() -> None:
    with pytest.raises(ValueError):
        calculate_cost("unknown-model", -1, 0, table=TABLE)


def test_a_cost_is_priced_by_the_table_it_is_given() -> None:
    custom = PriceTable([PriceRow("house-model", "local", Decimal(1), Decimal(2), date(2025, 1, 1))])
    assert calculate_cost("house-model", 1_000_000, 0, table=custom) == Decimal(1)
    assert calculate_cost("gpt-4o", 1, 1, table=custom) is None
    assert calculate_cost("gpt-4o", 1, 1, table=TABLE) is not None


# ---------------------------------------------------------------- operator price files

OPERATOR_FILE = """
[[price]]
model = "house-llm"
provider = "self-hosted"
input = "0.01"
output = "0.02"
effective = 2025-01-01

[[price]]
model = "gpt-4o"
provider = "openai"
input = "2.00"
output = "8.00"
effective = 2024-10-02

[aliases]
"our-gpt" = "gpt-4o"
"house-llm-v2" = "house-llm"
"""


def test_operator_file_adds_overrides_and_aliases(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(OPERATOR_FILE)
    table = PriceTable.load(path)

    house = table.price_at("house-llm", date(2025, 6, 1))
    assert house is not None and house.provider == "self-hosted"
    assert house.input_per_million == Decimal("0.01")

    overridden = table.price_at("gpt-4o", date(2024, 11, 1))
    assert overridden is not None
    assert (overridden.input_per_million, overridden.output_per_million) == (Decimal("2.00"), Decimal("8.00"))
    # Only the row with the same date is replaced; the earlier price is still there.
    earlier = table.price_at("gpt-4o", date(2024, 6, 1))
    assert earlier is not None and earlier.input_per_million == Decimal("5.00")
    assert len([row for row in table.rows if row.model == "gpt-4o"]) == 2

    assert table.resolve("our-gpt") == "gpt-4o"
    assert table.resolve("house-llm-v2") == "house-llm"
    assert table.resolve("chatgpt-4o-latest") == "gpt-4o-2024-05-13"  # packaged aliases remain
    assert calculate_cost("our-gpt", 1_000_000, 1_000_000, at=date(2025, 1, 1), table=table) == Decimal(10)
    # The packaged table itself is unchanged.
    assert TABLE.resolve("our-gpt") is None


def test_no_operator_file_is_the_packaged_table() -> None:
    assert PriceTable.load(None).rows == TABLE.rows


ROW = 'model = "x-model"\nprovider = "openai"\ninput = "1.00"\noutput = "2.00"\neffective = 2025-01-01\n'


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        pytest.param("[[price]]\n" + ROW.replace('"1.00"', '"1,00"'), "row 1", id="bad-decimal"),
        pytest.param("[[price]]\n" + ROW.replace('"1.00"', '"NaN"'), "row 1", id="nan"),
        pytest.param("[[price]]\n" + ROW.replace('"2.00"', '"-2.00"'), "negative", id="negative"),
        pytest.param("[[price]]\n" + ROW.replace('"1.00"', "1.00"), "quoted", id="float"),
        pytest.param("[[price]]\n" + ROW.replace('output = "2.00"\n', ""), "output", id="missing-field"),
        pytest.param("[[price]]\n" + ROW.replace("2025-01-01", '"2025-01-01"'), "effective", id="quoted-date"),
        pytest.param("[[price]]\n" + ROW.replace("2025-01-01", "2025-01-01T10:00:00"), "effective", id="datetime"),
        pytest.param("[[price]]\n" + ROW.replace("2025-01-01", "2025-13-01"), "TOML", id="impossible-date"),
        pytest.param("[[price]]\n" + ROW + 'ouput = "2"\n', "ouput", id="unknown-field"),
        pytest.param("[[price]]\n" + ROW + "[[price]]\n" + ROW, "row 2", id="duplicate-row"),
        pytest.param("[[prices]]\n" + ROW, "prices", id="misspelt-table"),
        pytest.param('[aliases]\n"mine" = "no-such-model"\n', "no-such-model", id="dangling-alias"),
        pytest.param("[aliases]\nmy.model = \"gpt-4o\"\n", "alias", id="dotted-alias-key"),
        pytest.param("[[price]\n", "TOML", id="syntax-error"),
    ],
)
def test_malformed_operator_file_is_a_value_error_naming_the_file(tmp_path: Path, text: str, mentions: str) -> None:
    path = tmp_path / "operator-prices.toml"
    path.write_text(text)
    with pytest.raises(ValueError) as raised:
        PriceTable.load(path)
    assert str(path) in str(raised.value)
    assert mentions in str(raised.value)


def test_missing_operator_file_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ValueError, match="absent.toml"):
        PriceTable.load(path)


# ---------------------------------------------------------------- the packaged table


def test_packaged_rows_are_sane() -> None:
    models_by_provider: dict[str, set[str]] = defaultdict(set)
    for row in TABLE.rows:
        assert row.input_per_million >= 0 and row.output_per_million >= 0
        assert row.provider in PROVIDERS
        models_by_provider[row.provider].add(row.model)
    for provider in PROVIDERS:
        assert len(models_by_provider[provider]) >= 3, provider


def test_packaged_aliases_point_at_priced_models() -> None:
    assert TABLE.aliases
    for target in TABLE.aliases.values():
        assert target in TABLE.models()


# ---------------------------------------------------------------- properties

MODELS = st.sampled_from(TABLE.models() + sorted(TABLE.aliases))
TOKENS = st.integers(min_value=0, max_value=10**9)
DAYS = st.dates(min_value=date(2024, 1, 1), max_value=date(2026, 12, 31))


def half_up_to_12_places(value: Fraction) -> Decimal:
    """Round a non-negative Fraction half-up to 12 places, independently of Decimal arithmetic."""
    scaled = value * 10**12
    units = (scaled.numerator * 2 + scaled.denominator) // (scaled.denominator * 2)  # floor(scaled + 1/2)
    return Decimal(units).scaleb(-12)


@PROPERTY_SETTINGS
@given(model=MODELS, input_tokens=TOKENS, output_tokens=TOKENS, at=DAYS)
def test_cost_matches_the_exact_formula(model: str, input_tokens: int, output_tokens: int, at: date) -> None:
    row = TABLE.price_at(model, at)
    assert row is not None
    exact = (
        Fraction(input_tokens) * Fraction(row.input_per_million)
        + Fraction(output_tokens) * Fraction(row.output_per_million)
    ) / 1_000_000
    cost = calculate_cost(model, input_tokens, output_tokens, at=at, table=TABLE)
    assert cost is not None
    assert cost >= 0
    assert cost == half_up_to_12_places(exact)
    assert cost.as_tuple().exponent == -12


@PROPERTY_SETTINGS
@given(
    model=MODELS,
    input_tokens=TOKENS,
    output_tokens=TOKENS,
    more=st.integers(min_value=0, max_value=10**9),
    at=DAYS,
)
def test_cost_never_decreases_with_more_tokens(
    model: str, input_tokens: int, output_tokens: int, more: int, at: date
) -> None:
    base = calculate_cost(model, input_tokens, output_tokens, at=at, table=TABLE)
    more_input = calculate_cost(model, input_tokens + more, output_tokens, at=at, table=TABLE)
    more_output = calculate_cost(model, input_tokens, output_tokens + more, at=at, table=TABLE)
    assert base is not None and more_input is not None and more_output is not None
    assert Decimal(0) <= base <= more_input
    assert base <= more_output


# ---------------------------------------------------------------- display


@pytest.mark.parametrize(
    ("cost", "shown"),
    [
        (None, "\u2014"),
        (Decimal(0), "$0.00"),
        (0, "$0.00"),
        (Decimal("1234.5678"), "$1,234.57"),
        (Decimal("0.004215"), "$0.0042"),
        (Decimal("0.000015"), "$0.000015"),
        (Decimal("0.0000005"), "$0.0000005"),
        (Decimal("0.00999"), "$0.01"),
        (Decimal("0.01"), "$0.01"),
        (Decimal("0.005"), "$0.005"),
        (Decimal("0.000000500000"), "$0.0000005"),
        (Decimal("0.008755000000"), "$0.0088"),
        (Decimal("0.125"), "$0.13"),
        (12, "$12.00"),
        (Decimal("1E+7"), "$10,000,000.00"),
        (Decimal("1E-20"), "$0.00000000000000000001"),
    ],
)
def test_format_cost(cost: Decimal | int | None, shown: str) -> None:
    assert format_cost(cost) == shown


@pytest.mark.parametrize("bad", [0.5, 1.0, True])
def test_format_cost_refuses_floats_and_bools(bad: Any) -> None:
    with pytest.raises(TypeError):
        format_cost(bad)


@PROPERTY_SETTINGS
@given(cost=st.decimals(min_value=0, max_value=10**6, allow_nan=False, allow_infinity=False, places=12))
def test_format_cost_is_never_scientific(cost: Decimal) -> None:
    shown = format_cost(cost)
    assert shown.startswith("$")
    assert "e" not in shown.lower()


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (950, "950"),
        (0, "0"),
        (1000, "1K"),
        (1050, "1.1K"),
        (12345, "12.3K"),
        (999999, "1M"),
        (3400000, "3.4M"),
        (2500000000, "2.5B"),
        (None, "\u2014"),
        (999, "999"),
        (999949, "999.9K"),
        (1_000_000, "1M"),
    ],
)
def test_format_tokens(n: int | None, shown: str) -> None:
    assert format_tokens(n) == shown


@PROPERTY_SETTINGS
@given(n=st.integers(min_value=0, max_value=10**12 - 1))
def test_format_tokens_never_shows_a_thousand_of_a_unit(n: int) -> None:
    shown = format_tokens(n)
    number = shown.rstrip("KMBT")
    assert Decimal(number) < 1000


def test_the_fingerprint_names_the_prices_not_how_the_file_spells_them(tmp_path: Path) -> None:
    same = tmp_path / "same.toml"
    # The packaged gpt-4o-mini row again, its amounts written differently: the same prices.
    same.write_text('[[price]]\nmodel = "gpt-4o-mini"\nprovider = "openai"\ninput = "0.150"\noutput = "0.6"\n'
                    "effective = 2024-07-18\n", encoding="utf-8")
    changed = tmp_path / "changed.toml"
    changed.write_text(same.read_text(encoding="utf-8").replace('"0.150"', '"0.30"'), encoding="utf-8")

    assert len(TABLE.fingerprint()) == 64
    assert PriceTable.load(same).fingerprint() == TABLE.fingerprint()
    assert PriceTable.load(changed).fingerprint() != TABLE.fingerprint()
