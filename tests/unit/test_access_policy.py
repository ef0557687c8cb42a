"""S-1: the access table itself, without a database."""

from __future__ import annotations

import pytest

from sscard.access.model import (
    PERMISSIONS,
    POLICY,
    SYSTEM,
    Actor,
    Permissions,
    RecordScope,
    Role,
    Scope,
    in_scope,
    require,
    require_scope,
)
from sscard.access.policy import has_role
from sscard.core.errors import Forbidden, NotFound
from sscard.register.model import OrgKind


def staff(kind: OrgKind, role: Role = Role.OPERATOR, bank_code: str | None = None) -> Actor:
    return Actor(
        staff_id=1,
        org_id=7,
        org_kind=kind,
        org_code=f"{kind.value}-7",
        role=role.value,
        bank_code=bank_code,
    )


def holder(person_id: int = 42) -> Actor:
    return Actor(
        staff_id=None,
        org_id=None,
        org_kind=OrgKind.CARDHOLDER,
        org_code="SELF",
        person_id=person_id,
    )


def test_s_1_an_operation_missing_from_the_table_is_refused_to_everyone() -> None:
    for kind in OrgKind:
        for role in Role:
            with pytest.raises(Forbidden):
                require(staff(kind, role), "cards.teleport")
    require(SYSTEM, "cards.teleport")  # the one bypass


def test_s_1_a_kind_missing_from_an_operation_is_refused() -> None:
    with pytest.raises(Forbidden) as exc:
        require(staff(OrgKind.PHARMACY, Role.ADMINISTRATOR), "cards.pickup")
    assert exc.value.extra["operation"] == "cards.pickup"


def test_s_1_roles_rank_operator_supervisor_administrator() -> None:
    assert has_role("administrator", Role.SUPERVISOR)
    assert has_role("supervisor", Role.SUPERVISOR)
    assert not has_role("operator", Role.SUPERVISOR)
    assert not has_role("janitor", Role.OPERATOR)  # an unknown role is below every role
    with pytest.raises(Forbidden) as exc:
        require(staff(OrgKind.CENTER), "change_requests.review")
    assert exc.value.extra["reason"] == "role"
    assert require(staff(OrgKind.CENTER, Role.SUPERVISOR), "change_requests.review") is Scope.ANY


def test_s_1_every_grant_above_operator_says_why() -> None:
    for op, grant in POLICY.items():
        if grant.role is not Role.OPERATOR:
            assert grant.why, op


def test_s_1_a_cardholder_acts_only_on_their_own_record() -> None:
    mine = [op for op, g in POLICY.items() if OrgKind.CARDHOLDER in g.scopes]
    assert "self.read" in mine
    assert all(POLICY[op].scopes[OrgKind.CARDHOLDER] is Scope.OWN_PERSON for op in mine)
    assert require_scope(holder(42), "cards.read", RecordScope("card with id 1", person_id=42))
    with pytest.raises(NotFound) as exc:
        require_scope(holder(42), "cards.read", RecordScope("card with id 1", person_id=43))
    assert exc.value.detail == "no card with id 1"
    # A cardholder has no staff role; whatever the field holds, it ranks nothing.
    odd = Actor(
        staff_id=None,
        org_id=None,
        org_kind=OrgKind.CARDHOLDER,
        org_code="SELF",
        person_id=42,
        role="cardholder",
    )
    assert require(odd, "self.read") is Scope.OWN_PERSON
    assert "self.read" in Permissions.of(odd).scopes


def test_s_1_only_counter_parties_act_on_a_presented_card() -> None:
    presented = {
        kind for g in POLICY.values() for kind, s in g.scopes.items() if s is Scope.PRESENTED
    }
    assert presented == {OrgKind.HOSPITAL, OrgKind.PHARMACY, OrgKind.GRASSROOTS, OrgKind.HOTLINE}


def test_s_1_banks_act_on_their_own_bank_only() -> None:
    for op, grant in POLICY.items():
        for kind in (OrgKind.BANK, OrgKind.OUTLET):
            if op in ("units.agreement", "organizations.read", "calendar.read"):
                continue  # the directory, the calendar, signing in the bank's own name
            if kind in grant.scopes:
                assert grant.scopes[kind] in (Scope.OWN_BANK, Scope.OWN_ORG), (op, kind)
    icbc = staff(OrgKind.OUTLET, bank_code="ICBC")
    card = RecordScope("card with id 5", bank_codes=frozenset({"ICBC"}))
    assert in_scope(icbc, Scope.OWN_BANK, card)
    assert not in_scope(staff(OrgKind.OUTLET, bank_code="BOC"), Scope.OWN_BANK, card)
    assert not in_scope(staff(OrgKind.OUTLET), Scope.OWN_BANK, card)  # no bank: nothing


def test_s_1_scopes_compare_the_right_owner() -> None:
    unit = staff(OrgKind.UNIT)
    assert in_scope(unit, Scope.OWN_UNIT, RecordScope("x", unit_org_id=7))
    assert not in_scope(unit, Scope.OWN_UNIT, RecordScope("x", unit_org_id=8))
    assert not in_scope(unit, Scope.OWN_UNIT, RecordScope("x"))
    assert in_scope(unit, Scope.OWN_ORG, RecordScope("x", org_id=7))
    assert not in_scope(unit, Scope.OWN_ORG, RecordScope("x", org_id=8))
    assert not in_scope(holder(), Scope.OWN_PERSON, RecordScope("x"))
    no_person = Actor(staff_id=None, org_id=None, org_kind=OrgKind.CARDHOLDER, org_code="SELF")
    assert not in_scope(no_person, Scope.OWN_PERSON, RecordScope("x", person_id=None))


def test_s_1_the_kinds_view_and_me_follow_the_table() -> None:
    assert PERMISSIONS["cards.pickup"] == frozenset({OrgKind.OUTLET})
    view = Permissions.of(staff(OrgKind.OUTLET, bank_code="ICBC"))
    assert view.scopes["cards.pickup"] is Scope.OWN_BANK
    assert "cards.destroy" not in view.scopes  # needs a supervisor
    boss = Permissions.of(staff(OrgKind.OUTLET, Role.SUPERVISOR, bank_code="ICBC"))
    assert boss.scopes["cards.destroy"] is Scope.OWN_BANK
    assert view.operations == sorted(view.scopes)


def test_s_1_the_access_table_is_pure() -> None:
    from tests.unit.test_boundaries import imports_of

    for module in ("sscard.access.policy", "sscard.access.model"):
        outside = {
            i
            for i in imports_of(module)
            if i.split(".")[0] in ("fastapi", "sqlalchemy", "starlette")
        }
        assert not outside, (module, outside)
