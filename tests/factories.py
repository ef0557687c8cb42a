"""Factories with traits: build organizations, persons and cards in any state.

Cards are driven to the state asked for through the real services, so a factory
card has the same history a real one would.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select

from sscard.access.auth import staff_actor
from sscard.access.model import Actor, Service
from sscard.access.tables import Staff
from sscard.applications import batches, changes
from sscard.applications import service as applications
from sscard.applications.tables import Application, Batch, ChangeRequest
from sscard.cards import loss
from sscard.cards import service as cards
from sscard.cards.model import CardState
from sscard.cards.tables import Card
from sscard.core.clock import FixedClock
from sscard.core.ids import luhn_complete, make_citizen_id
from sscard.db import idempotency
from sscard.db.engine import UnitOfWork
from sscard.register.model import OldCardState, OrgKind
from sscard.register.service import hash_token
from sscard.register.tables import Organization, Person, Unit
from sscard.runtime import Runtime

HOLDER_PASSWORD = "holder-self-service-1"  # every test cardholder's self-service password
_seq = itertools.count(1)


def _plain(result: Any) -> dict[str, Any]:
    """A use case's result as the JSON an answer holds."""
    return {
        k: v.isoformat() if isinstance(v, datetime) else v
        for k, v in dataclasses.asdict(result).items()
    }


def next_id_number(region: str = "441900", birth: date = date(1990, 5, 17)) -> str:
    n = next(_seq)
    return make_citizen_id(region, birth + timedelta(days=n // 900), 100 + n % 900)


@dataclass(frozen=True)
class UnitCard:
    """A unit-bundled card (A-2) and what led to it: one unit, its one insured person,
    the bundle of forms and that person's form."""

    card: Card
    unit: Organization
    person: Person
    batch: Batch
    application: Application


class World:
    """A small region inside one test's transaction."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._actors: dict[tuple[str, str | None, str], Actor] = {}
        self.tokens: dict[tuple[str, str | None, str], str] = {}

    @property
    def clock(self) -> FixedClock:
        assert isinstance(self.rt.clock, FixedClock)
        return self.rt.clock

    def advance(self, *, days: int = 0, hours: int = 0) -> None:
        self.clock.advance(timedelta(days=days, hours=hours))

    def goto(self, day: date, hour: int = 9) -> None:
        now = self.clock.now()
        self.clock.set(now.replace(year=day.year, month=day.month, day=day.day, hour=hour))

    def working_days_after(self, start: date, n: int) -> date:
        with self.rt.uow() as uow:
            return self.rt.calendar(uow.session).add_working_days(start, n).day

    # ------------------------------------------------------------ organizations

    def org(
        self,
        kind: OrgKind,
        *,
        bank: str | None = None,
        code: str | None = None,
        authorised: bool = True,
    ) -> Organization:
        """An organization; pharmacies and platforms authorised for every service
        unless ``authorised=False``."""
        code = code or f"{kind.value[:6].upper()}{next(_seq)}"
        with self.rt.uow() as uow:
            s = uow.session
            parent = None
            if kind is OrgKind.OUTLET:
                parent = s.scalar(select(Organization.id).where(Organization.code == bank))
            if kind is OrgKind.BANK:
                existing = s.scalar(select(Organization).where(Organization.code == bank))
                assert existing is not None, f"bank {bank} is not in the policy"
                return existing
            org = Organization(
                kind=kind.value,
                authorisations=[v.value for v in Service] if authorised else [],
                code=code,
                name=f"{kind.value} {code}",
                parent_id=parent,
                bank_code=bank if kind is OrgKind.OUTLET else None,
                created_at=self.rt.now(),
            )
            s.add(org)
            uow.commit()
            return org

    def actor(self, kind: OrgKind, bank: str | None = None, *, role: str = "operator") -> Actor:
        """A staff member with ``role`` of a (cached) organization of this kind, with a
        bearer token; every role of one kind (and bank) works for the same organization."""
        if kind in (OrgKind.BANK, OrgKind.OUTLET) and bank is None:
            bank = "ICBC"
        key = (kind.value, bank, role)
        if key not in self._actors:
            same_org = next((a for k, a in self._actors.items() if k[:2] == key[:2]), None)
            org = self.org(kind, bank=bank) if same_org is None else self._org(same_org)
            token = f"t-{kind.value}-{bank}-{role}-{next(_seq)}"
            staff = self._staff(org, role=role, name=f"staff of {org.code}", token=token)
            self._actors[key] = Actor(
                staff_id=staff.id,
                org_id=org.id,
                org_kind=kind,
                org_code=org.code,
                bank_code=bank if kind in (OrgKind.BANK, OrgKind.OUTLET) else None,
                name=staff.name,
                role=role,
            )
            self.tokens[key] = token
        return self._actors[key]

    def _staff(self, org: Organization, *, role: str, name: str, token: str) -> Staff:
        """A staff member of ``org`` whose bearer token is ``token``."""
        with self.rt.uow() as uow:
            staff = Staff(
                org_id=org.id,
                name=name,
                role=role,
                token_hash=hash_token(token),
                created_at=self.rt.now(),
            )
            uow.session.add(staff)
            uow.commit()
        return staff

    def _org(self, actor: Actor) -> Organization:
        with self.rt.uow() as uow:
            org = uow.session.get(Organization, actor.org_id)
            assert org is not None
            return org

    def token(self, kind: OrgKind, bank: str | None = None, *, role: str = "operator") -> str:
        self.actor(kind, bank, role=role)
        if kind in (OrgKind.BANK, OrgKind.OUTLET) and bank is None:
            bank = "ICBC"
        return self.tokens[(kind.value, bank, role)]

    def token_for(self, org: Organization, role: str = "operator") -> str:
        """A bearer token of a new staff member of ``org`` with ``role``."""
        token = f"t-{org.code}-{role}-{next(_seq)}"
        self._staff(org, role=role, name=f"{role} of {org.code}", token=token)
        return token

    def cardholder_token(self, person: Person | int) -> str:
        """A fresh self-service session of the person (a login is made the first time).

        The login is added directly (registration proves the card: see the auth tests);
        the session comes from the real cardholder login, so requests with it go
        through the real authentication.
        """
        from sscard.access.selfservice import login
        from sscard.access.tables import Login

        person_id = person if isinstance(person, int) else person.id
        with self.rt.uow() as uow:
            found = uow.session.get(Person, person_id)
            assert found is not None
            if uow.session.scalar(select(Login.id).where(Login.person_id == person_id)) is None:
                uow.session.add(
                    Login(
                        person_id=person_id,
                        password_hash=self._holder_hash(),
                        password_set_at=self.rt.now(),
                        failed_attempts=0,
                        created_at=self.rt.now(),
                    )
                )
                uow.commit()
            id_number = found.id_number
        return login(
            self.rt, id_number=id_number, password=HOLDER_PASSWORD, source="testclient"
        ).token

    _hash: str | None = None

    @classmethod
    def _holder_hash(cls) -> str:
        from sscard.access.auth import hash_password

        if cls._hash is None:
            cls._hash = hash_password(HOLDER_PASSWORD)
        return cls._hash

    def cardholder(self, person: Person) -> Actor:
        """The person in self-service, for service-level tests (HTTP tests log in)."""
        return Actor(
            staff_id=None,
            org_id=None,
            org_kind=OrgKind.CARDHOLDER,
            org_code="SELF",
            name=person.name,
            person_id=person.id,
        )

    def staff_of(self, org: Organization) -> Actor:
        """A fresh staff member of ``org`` (e.g. an unauthorised pharmacy)."""
        token = f"t-{org.code}-{next(_seq)}"
        staff = self._staff(org, role="operator", name=f"staff of {org.code}", token=token)
        return staff_actor(staff, org, source="system")

    def unit_actor(self, unit_org: Organization) -> Actor:
        return Actor(
            staff_id=None,
            org_id=unit_org.id,
            org_kind=OrgKind.UNIT,
            org_code=unit_org.code,
            name="unit administrator",
        )

    def unit(self, *, kind: str = "ordinary", bank: str | None = "ICBC") -> Organization:
        from stdnum.cn import uscc

        n = next(_seq)
        body = f"91441900M{n:08d}"
        with self.rt.uow() as uow:
            org = Organization(
                kind=OrgKind.UNIT.value, code=f"U{n}", name=f"Unit {n}", created_at=self.rt.now()
            )
            uow.session.add(org)
            uow.session.flush()
            uow.session.add(
                Unit(
                    org_id=org.id,
                    uscc=body + uscc.calc_check_digit(body),
                    unit_kind=kind,
                    agreement_bank_code=bank,
                    agreement_signed_at=self.rt.now() if bank else None,
                )
            )
            uow.commit()
            return org

    # ------------------------------------------------------------ persons

    def person(
        self,
        *,
        unit: Organization | None = None,
        insured: bool = True,
        old_card: bool = False,
        scheme: str = "employee",
        **extra: Any,
    ) -> Person:
        number = extra.pop("id_number", None) or next_id_number()
        with self.rt.uow() as uow:
            p = Person(
                id_number=number,
                id_kind="citizen",
                name=extra.pop("name", "张三"),
                gender="male" if int(number[16]) % 2 else "female",
                birth_date=date(int(number[6:10]), int(number[10:12]), int(number[12:14])),
                status="employed" if unit else "unemployed",
                phone="13800138000",
                unit_org_id=unit.id if unit else None,
                medical_scheme=scheme,
                insured_since=date(2020, 1, 1) if insured else None,
                old_medical_card_no="YB000000001" if old_card else None,
                old_medical_card_state=(
                    OldCardState.NORMAL if old_card else OldCardState.NONE
                ).value,
                created_at=self.rt.now(),
                updated_at=self.rt.now(),
                **extra,
            )
            uow.session.add(p)
            uow.commit()
            return p

    def change_request(
        self, person_id: int, *, field_name: str, new_value: str, document: str
    ) -> ChangeRequest:
        """ID-4: the service point drafts a change of the person's name or ID number."""
        with self.rt.uow() as uow:
            return changes.create_request(
                uow,
                self.rt,
                actor=self.actor(OrgKind.SERVICE_POINT),
                person_id=person_id,
                field_name=field_name,
                new_value=new_value,
                document=document,
            )

    # ------------------------------------------------------------ cards

    def ordered_card(self, *, person: Person | None = None, bank: str = "ICBC") -> Card:
        """An individual application accepted: the card is ordered."""
        person = person or self.person()
        sp = self.actor(OrgKind.SERVICE_POINT)
        with self.rt.uow() as uow:
            app = applications.issue_individual(
                uow, self.rt, actor=sp, person_id=person.id, bank_code=bank
            )
        with self.rt.uow() as uow:
            applications.correct_form(
                uow, self.rt, actor=sp, application_id=app.id, photo_source="id_card_authorisation"
            )
        with self.rt.uow() as uow:
            applications.return_form(uow, self.rt, actor=sp, application_id=app.id)
        with self.rt.uow() as uow:
            _, card = applications.check_individual(uow, self.rt, actor=sp, application_id=app.id)
        assert card is not None
        return card

    def issue_unit_batch(
        self, unit: Organization, *, stage: str = "s1"
    ) -> tuple[Batch, list[Application]]:
        """A-2 steps 1-2: the service point hands the unit its forms of ``stage``; the
        first form gets its photo (the ID-card photo, authorised)."""
        sp = self.actor(OrgKind.SERVICE_POINT)
        with self.rt.uow() as uow:
            batch, apps = batches.issue_batch(
                uow,
                self.rt,
                actor=sp,
                unit_code=unit.code,
                stage=stage,
                collector=batches.Collector("王芳", next_id_number()),
            )
        with self.rt.uow() as uow:
            applications.correct_form(
                uow,
                self.rt,
                actor=sp,
                application_id=apps[0].id,
                photo_source="id_card_authorisation",
            )
        return batch, apps

    def accept_unit_batch(self, batch: Batch, unit: Organization) -> Card:
        """A-2 steps 3-7: the bundle returned and checked; the unit's one card produced on
        its ready day and at the outlet."""
        sp = self.actor(OrgKind.SERVICE_POINT)
        with self.rt.uow() as uow:
            batches.return_batch(uow, self.rt, actor=sp, batch_id=batch.id)
        with self.rt.uow() as uow:
            batches.check_batch(uow, self.rt, actor=sp, batch_id=batch.id)
        with self.rt.uow() as uow:
            card = uow.session.scalars(select(Card).where(Card.unit_org_id == unit.id)).one()
        self.goto(card.ready_on)
        return self.produce(card)

    def unit_card(self, *, stage: str = "s1") -> UnitCard:
        """A unit (signed with ICBC) with one insured person, whose bundled card is
        produced and at the outlet."""
        unit = self.unit(bank="ICBC")
        person = self.person(unit=unit)
        batch, apps = self.issue_unit_batch(unit, stage=stage)
        card = self.accept_unit_batch(batch, unit)
        return UnitCard(card=card, unit=unit, person=person, batch=batch, application=apps[0])

    def produce(self, card: Card) -> Card:
        n = next(_seq)
        bank = self.rt.policy.bank(card.bank_code)
        assert bank is not None
        prefix = bank.bin_prefixes[0]
        number = luhn_complete(prefix + f"{n:012d}")
        outlet = self.actor(OrgKind.OUTLET, card.bank_code)
        with self.rt.uow() as uow:
            return cards.record_production(
                uow,
                self.rt,
                actor=self.actor(OrgKind.BANK, card.bank_code),
                card_id=card.id,
                card_number=f"A{n:08d}",
                serial=f"SN{n:010d}",
                bank_card_number=number,
                outlet_code=outlet.org_code,
            ).card

    def set_consumption_password(
        self,
        person_id: int,
        password: str,
        *,
        field: str = "medical_password",
        event: str = "set_at_activation",
    ) -> Person:
        """Set the person's consumption password (P-1) at an outlet, as activation does."""
        from sscard.accounts.passwords import set_password

        with self.rt.uow() as uow:
            person = uow.session.get(Person, person_id)
            assert person is not None
            set_password(
                uow.session,
                self.rt,
                actor=self.actor(OrgKind.OUTLET),
                person=person,
                password=password,
                field=field,
                event=event,
            )
            uow.commit()
        return person

    def once(
        self, actor: Actor, key: str, act: Callable[[UnitOfWork], Any], *, request: str
    ) -> SimpleNamespace:
        """Run a use case once per Idempotency-Key, as the API does (``db.idempotency``):
        the answer's fields, and ``replayed``. ``request`` stands for the request's body."""
        with UnitOfWork(self.rt.session_factory, held=True) as uow:
            answer, replayed = idempotency.once(
                uow,
                staff_id=actor.staff_id or 0,
                key=key,
                fingerprint=hashlib.sha256(request.encode()).hexdigest(),
                now=self.rt.now(),
                act=lambda: act(uow),
                render=_plain,
            )
        return SimpleNamespace(**answer.body, replayed=replayed)

    def settle(
        self, actor: Actor, card: Card, amount_fen: int, *, key: str, **given: Any
    ) -> SimpleNamespace:
        """A settlement at ``actor``'s institution, once per key (``accounts.settlement``)."""
        from sscard.accounts import settlement

        fields = {"kind": "outpatient", **given}
        return self.once(
            actor,
            key,
            lambda uow: settlement.settle(
                uow,
                self.rt,
                actor=actor,
                card_number=card.card_number or "",
                amount_fen=amount_fen,
                **fields,
            ),
            request=f"settle {card.card_number} {amount_fen} {sorted(fields.items())}",
        )

    def refund(
        self, actor: Actor, settlement_id: int, amount_fen: int, *, key: str
    ) -> SimpleNamespace:
        """A refund of a settlement, once per key."""
        from sscard.accounts import settlement

        return self.once(
            actor,
            key,
            lambda uow: settlement.refund(
                uow, self.rt, actor=actor, settlement_id=settlement_id, amount_fen=amount_fen
            ),
            request=f"refund {settlement_id} {amount_fen}",
        )

    def card(
        self,
        state: CardState | str = CardState.ACTIVE,
        *,
        person: Person | None = None,
        bank: str = "ICBC",
    ) -> Card:
        """A card in ``state``, reached through the real services."""
        return self.cards(1, state, person=person, bank=bank)[0]

    def cards(
        self,
        n: int,
        state: CardState | str = CardState.ACTIVE,
        *,
        person: Person | None = None,
        bank: str = "ICBC",
    ) -> list[Card]:
        """``n`` cards in ``state``, all ordered first so the clock moves only once."""
        state = CardState(state)
        ordered = [self.ordered_card(person=person, bank=bank) for _ in range(n)]
        if state is CardState.ORDERED:
            return ordered
        self.goto(max(c.ready_on for c in ordered))
        return [self._drive(self.produce(c), state, bank) for c in ordered]

    def _drive(self, card: Card, state: CardState, bank: str) -> Card:
        if state is CardState.AT_OUTLET:
            return card
        outlet = self.actor(OrgKind.OUTLET, bank)
        with self.rt.uow() as uow:
            card = cards.pickup(uow, self.rt, actor=outlet, card_id=card.id, by="holder").card
        if state is CardState.RECEIVED:
            return card
        with self.rt.uow() as uow:
            card = cards.activate(
                uow, self.rt, actor=outlet, card_id=card.id, channel="outlet"
            ).card
        if state is CardState.ACTIVE:
            return card
        if state is CardState.LOST_ORAL:
            with self.rt.uow() as uow:
                return loss.report_loss_oral(
                    uow, self.rt, actor=outlet, card_id=card.id, channel="bank_phone"
                ).card
        with self.rt.uow() as uow:
            card = loss.report_loss_written(uow, self.rt, actor=outlet, card_id=card.id)[0].card
        if state is CardState.LOST_WRITTEN:
            return card
        assert state is CardState.REPLACED, f"no factory trait for {state}"
        with self.rt.uow() as uow:
            return loss.replace_card(uow, self.rt, actor=outlet, card_id=card.id).old.card

    def reload(self, card: Card) -> Card:
        with self.rt.uow() as uow:
            fresh = uow.session.get(Card, card.id)
            assert fresh is not None
            return fresh
