"""Region policy presets (B-1, B-2, V-1, A-5, F-1, F-2) and refusal of bad policy files.

Bad files are made by editing the Dongguan preset; the expected line is computed from
the edited text, never written down by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sscard.core.policy import (
    PRESETS_DIR,
    AgentAct,
    Channel,
    PolicyError,
    RegionPolicy,
    UnitKind,
    load_policy,
    parse_policy,
    preset_names,
    resolve_policy_path,
)

DONGGUAN_TEXT = (PRESETS_DIR / "dongguan.toml").read_text(encoding="utf-8")
SOURCE = "edited.toml"


@pytest.fixture(scope="module")
def dongguan() -> RegionPolicy:
    return load_policy("dongguan")


@pytest.fixture(scope="module")
def henan() -> RegionPolicy:
    return load_policy("henan")


def edit(old: str, new: str) -> str:
    """The Dongguan preset with exactly one occurrence of ``old`` replaced."""
    assert DONGGUAN_TEXT.count(old) == 1, old
    return DONGGUAN_TEXT.replace(old, new)


def line_of(text: str, needle: str, occurrence: int | None = None) -> int:
    """1-based number of the line containing ``needle``.

    Without ``occurrence`` the needle must be on exactly one line.
    """
    found = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    if occurrence is None:
        assert len(found) == 1, (needle, found)
        return found[0]
    assert len(found) > occurrence, needle
    return found[occurrence]


def refusal(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source=SOURCE)
    return info.value


# --- the presets ------------------------------------------------------------------


def test_presets_are_dongguan_and_henan() -> None:
    assert {"dongguan", "henan"} <= set(preset_names())


def test_preset_text_parses_as_loaded(dongguan: RegionPolicy) -> None:
    assert parse_policy(DONGGUAN_TEXT) == dongguan
    assert dongguan.region.code == "441900"
    assert dongguan.region.timezone == "Asia/Shanghai"


def test_b_1_dongguan_lists_six_issuing_banks(dongguan: RegionPolicy) -> None:
    assert [b.code for b in dongguan.banks] == ["DGB", "CGB", "BOC", "CCB", "ICBC", "ABC"]
    assert all(b.bin_prefixes for b in dongguan.banks)


def test_b_1_bank_lookup_by_code(dongguan: RegionPolicy) -> None:
    cgb = dongguan.bank("CGB")
    assert cgb is not None
    assert cgb.name_en == "Guangfa Bank Dongguan Branch"
    assert cgb.bin_prefixes == ["623506"]
    assert dongguan.bank("ZYB") is None


def test_b_2_dongguan_forces_cgb_and_dgb_for_unit_kinds(dongguan: RegionPolicy) -> None:
    assert dongguan.bank_forcing == {
        UnitKind.COMPREHENSIVE_MEDICAL: "CGB",
        UnitKind.VILLAGE_COMMUNITY: "DGB",
    }
    assert UnitKind.ORDINARY not in dongguan.bank_forcing


def test_v_1_dongguan_activation_channels_exclude_online_and_phone(
    dongguan: RegionPolicy,
) -> None:
    channels = set(dongguan.activation.channels)
    assert channels == {
        Channel.OUTLET,
        Channel.HOSPITAL,
        Channel.PHARMACY,
        Channel.BANK_FINANCIAL,
    }
    assert Channel.ONLINE not in channels
    assert Channel.PHONE_12333 not in channels


def test_l_1_dongguan_oral_loss_channels(dongguan: RegionPolicy) -> None:
    assert set(dongguan.loss.oral_channels) == {Channel.BANK_PHONE, Channel.ONLINE_BANKING}


@pytest.mark.parametrize(
    "act", [AgentAct.ACTIVATION, AgentAct.LOSS_REPORT, AgentAct.CANCEL_LOSS_REPORT]
)
def test_a_5_dongguan_agents_may_not_activate_or_report_loss(
    dongguan: RegionPolicy, act: AgentAct
) -> None:
    assert not dongguan.agent_may(act)


@pytest.mark.parametrize("act", [AgentAct.APPLICATION, AgentAct.BANK_CHOICE, AgentAct.PICKUP])
def test_a_5_dongguan_agents_may_apply_choose_bank_and_pick_up(
    dongguan: RegionPolicy, act: AgentAct
) -> None:
    assert dongguan.agent_may(act)


def test_v_1_henan_allows_online_and_12333_activation(henan: RegionPolicy) -> None:
    assert Channel.ONLINE in henan.activation.channels
    assert Channel.PHONE_12333 in henan.activation.channels
    assert Channel.BUREAU_WINDOW in henan.activation.channels
    assert Channel.GRASSROOTS in henan.activation.channels


def test_a_5_henan_agents_may_activate_and_report_loss(henan: RegionPolicy) -> None:
    assert henan.agent_may(AgentAct.ACTIVATION)
    assert henan.agent_may(AgentAct.LOSS_REPORT)
    assert not henan.agent_may(AgentAct.PASSWORD_RESET)


def test_b_2_henan_forces_no_bank(henan: RegionPolicy) -> None:
    assert henan.bank_forcing == {}


@pytest.mark.parametrize("name", ["dongguan", "henan"])
def test_f_1_first_card_and_loss_reports_free_replacement_and_change_2000_fen(name: str) -> None:
    fees = load_policy(name).fees
    assert fees.first_card_fen == 0
    assert fees.loss_report_fen == 0
    assert fees.replacement_fen == 2000
    assert fees.change_fen == 2000


def test_f_1_henan_replacement_costs_2000_fen(henan: RegionPolicy) -> None:
    assert henan.fees.replacement_fen == 2000


@pytest.mark.parametrize("name", ["dongguan", "henan"])
def test_f_2_quality_problem_free_in_presets(name: str) -> None:
    assert load_policy(name).fees.quality_problem_free is True


@pytest.mark.parametrize("name", ["dongguan", "henan"])
def test_preset_deadlines_match_the_seeds(name: str) -> None:
    d = load_policy(name).deadlines
    assert d.production_working_days == 30  # A-2 step 7, R-1
    assert d.handout_working_days == 5  # A-2 step 8
    assert d.oral_loss_natural_days == 5  # L-1
    assert d.unclaimed_destroy_days == 180  # D-2
    assert d.old_card_restrict_months == 6  # V-4
    assert d.financial_activation_days == 300  # V-5
    assert d.card_validity_years == 10  # C-2


def test_p_2_preset_wrong_password_attempts(dongguan: RegionPolicy) -> None:
    assert dongguan.passwords.max_wrong_attempts == 3


def test_policy_values_are_read_from_the_file() -> None:
    policy = parse_policy(edit("replacement_fen = 2000", "replacement_fen = 3500"))
    assert policy.fees.replacement_fen == 3500


def test_omitted_sections_take_the_seed_defaults() -> None:
    text = DONGGUAN_TEXT
    for section in ("[deadlines]", "[fees]", "[passwords]"):
        start = text.index(section)
        end = text.find("\n[", start + 1)
        text = text[:start] + (text[end + 1 :] if end != -1 else "")
    policy = parse_policy(text)
    assert policy.fees.replacement_fen == 2000
    assert policy.fees.quality_problem_free is True
    assert policy.deadlines.production_working_days == 30
    assert policy.deadlines.card_validity_years == 10
    assert policy.passwords.max_wrong_attempts == 3


# --- bad policy files: refused with the line and the reason ----------------------


def test_refuses_negative_fee_with_its_line() -> None:
    text = edit("replacement_fen = 2000", "replacement_fen = -1")
    error = refusal(text)
    assert error.line == line_of(text, "replacement_fen = -1")
    assert error.reason.startswith("fees.replacement_fen:")
    assert "greater than or equal to 0" in error.reason
    assert error.source == SOURCE
    assert str(error).startswith(f"{SOURCE}:{error.line}: ")


def test_refuses_unknown_key_with_its_line() -> None:
    text = edit('name_en = "Dongguan"\n', 'name_en = "Dongguan"\ncolour = "red"\n')
    error = refusal(text)
    assert error.line == line_of(text, 'colour = "red"')
    assert error.reason == "unknown key 'colour'"


def test_refuses_unknown_top_level_key_with_its_line() -> None:
    text = edit("[region]", 'title = "x"\n\n[region]')
    error = refusal(text)
    assert error.line == line_of(text, 'title = "x"')
    assert error.reason == "unknown key 'title'"


def test_b_2_refuses_forcing_to_a_bank_not_listed_with_its_line() -> None:
    text = edit('village_community = "DGB"', 'village_community = "XYZ"')
    error = refusal(text)
    assert "village_community names bank 'XYZ', which is not in [[banks]]" in error.reason
    assert error.line == line_of(text, 'village_community = "XYZ"')


def test_b_2_refuses_forcing_for_an_unknown_unit_kind_with_its_line() -> None:
    text = edit('village_community = "DGB"', 'hospital_units = "DGB"')
    error = refusal(text)
    assert "comprehensive_medical" in error.reason
    assert error.line == line_of(text, 'hospital_units = "DGB"')


def test_b_2_refuses_badly_written_forced_bank_code_with_its_line() -> None:
    text = edit('village_community = "DGB"', 'village_community = "dgb"')
    error = refusal(text)
    assert error.line == line_of(text, 'village_community = "dgb"')
    assert error.reason.startswith("bank_forcing.village_community:")


def test_v_1_refuses_a_channel_that_is_not_an_activation_channel() -> None:
    old = 'channels = ["outlet", "hospital", "pharmacy", "bank_financial"]'
    new = 'channels = ["outlet", "bank_phone"]'
    text = edit(old, new)
    error = refusal(text)
    assert error.line == line_of(text, new)
    assert "'bank_phone' is not an activation channel" in error.reason
    assert error.reason.startswith("activation.channels:")


def test_v_1_refuses_a_channel_name_that_does_not_exist() -> None:
    old = 'channels = ["outlet", "hospital", "pharmacy", "bank_financial"]'
    new = 'channels = ["outlet", "telepathy"]'
    text = edit(old, new)
    error = refusal(text)
    assert error.line == line_of(text, new)
    assert error.reason.startswith("activation.channels.1:")


def test_l_1_refuses_an_oral_loss_channel_that_takes_no_oral_report() -> None:
    old = 'oral_channels = ["bank_phone", "online_banking"]'
    new = 'oral_channels = ["outlet"]'
    text = edit(old, new)
    error = refusal(text)
    assert error.line == line_of(text, new)
    assert "'outlet' is not an oral loss report channel" in error.reason


def test_a_5_refuses_an_unknown_agent_act() -> None:
    old = 'allowed = ["application", "bank_choice", "pickup"]'
    new = 'allowed = ["application", "dancing"]'
    text = edit(old, new)
    error = refusal(text)
    assert error.line == line_of(text, new)
    assert error.reason.startswith("agents.allowed.1:")


def test_refuses_toml_syntax_error_with_its_line() -> None:
    text = edit('name = "东莞市"', 'name = "东莞市')
    error = refusal(text)
    expected = line_of(text, 'name = "东莞市')
    assert error.line == expected
    assert f"line {expected}" in error.reason


def test_refuses_toml_value_missing_with_its_line() -> None:
    text = edit("max_wrong_attempts = 3", "max_wrong_attempts = ")
    error = refusal(text)
    assert error.line == line_of(text, "max_wrong_attempts =")
    assert "Invalid value" in error.reason


def test_b_1_refuses_duplicate_bank_code_with_the_line_of_the_duplicate() -> None:
    text = edit('code = "CGB"', 'code = "DGB"')
    error = refusal(text)
    assert error.reason == "banks: bank code 'DGB' appears twice in [[banks]]"
    assert error.line == line_of(text, 'code = "DGB"', occurrence=1)


def test_b_1_refuses_bad_bin_prefix_in_the_right_bank_block() -> None:
    text = edit('bin_prefixes = ["621467"]', 'bin_prefixes = ["62146"]')
    error = refusal(text)
    assert error.line == line_of(text, 'bin_prefixes = ["62146"]')
    assert error.reason.startswith("banks.3.bin_prefixes.0:")


def test_refuses_missing_required_section() -> None:
    start = DONGGUAN_TEXT.index("# A-5:")
    end = DONGGUAN_TEXT.index("[fees]")
    text = DONGGUAN_TEXT[:start] + DONGGUAN_TEXT[end:]
    assert "[agents]" not in text
    error = refusal(text)
    assert error.reason == "'agents' is required"
    assert error.line is None
    assert str(error) == f"{SOURCE}: 'agents' is required"


def test_refuses_missing_required_key_at_its_section() -> None:
    text = edit('name_en = "Dongguan"\n', "")
    error = refusal(text)
    assert error.reason == "'region.name_en' is required"
    assert error.line == line_of(text, "[region]")


def test_refuses_bad_region_code_with_its_line() -> None:
    text = edit('code = "441900"', 'code = "4419"')
    error = refusal(text)
    assert error.line == line_of(text, 'code = "4419"')
    assert error.reason.startswith("region.code:")


def test_refuses_wrong_type_with_its_line() -> None:
    text = edit("quality_problem_free = true", 'quality_problem_free = "maybe"')
    error = refusal(text)
    assert error.line == line_of(text, 'quality_problem_free = "maybe"')
    assert "valid boolean" in error.reason


def test_refuses_zero_working_days_deadline_with_its_line() -> None:
    text = edit("production_working_days = 30", "production_working_days = 0")
    error = refusal(text)
    assert error.line == line_of(text, "production_working_days = 0")
    assert error.reason.startswith("deadlines.production_working_days:")


def test_line_found_when_the_table_header_carries_a_comment() -> None:
    text = edit("[fees]", "[fees]  # F-1, F-2").replace(
        "replacement_fen = 2000", "replacement_fen = -1"
    )
    error = refusal(text)
    assert error.line == line_of(text, "replacement_fen = -1")


def test_load_policy_of_missing_preset_names_the_presets() -> None:
    with pytest.raises(PolicyError) as info:
        load_policy("atlantis")
    assert info.value.line is None
    assert info.value.source.endswith("atlantis.toml")
    assert "no such policy file" in info.value.reason
    for name in preset_names():
        assert name in info.value.reason


def test_load_policy_from_a_path_reports_the_path_and_line(tmp_path: Path) -> None:
    text = edit("change_fen = 2000", "change_fen = 100001")
    path = tmp_path / "region.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(str(path))
    assert info.value.source == str(path)
    assert info.value.line == line_of(text, "change_fen = 100001")
    assert "less than or equal to 100000" in info.value.reason


def test_load_policy_from_a_good_path(tmp_path: Path) -> None:
    path = tmp_path / "region.toml"
    path.write_text(edit("change_fen = 2000", "change_fen = 1500"), encoding="utf-8")
    assert load_policy(str(path)).fees.change_fen == 1500


def test_resolve_policy_path_maps_names_to_presets() -> None:
    assert resolve_policy_path("henan") == PRESETS_DIR / "henan.toml"
    assert resolve_policy_path("other/region.toml") == Path("other/region.toml")
