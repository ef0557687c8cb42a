"""A ready demo region: organizations, staff with fixed tokens, units and persons.

Only for ``make run`` and the README walk-through; the fixed tokens are printed and
are of no use outside a demo database.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from faker import Faker
from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.cn import uscc

from sscard.access.model import Role, Service
from sscard.access.tables import Login, Staff
from sscard.core.ids import make_citizen_id
from sscard.register.model import MedicalScheme, OldCardState, OrgKind
from sscard.register.service import hash_token
from sscard.register.tables import Organization, Person, Unit
from sscard.runtime import Runtime

CENTER = "CENTER"
# The center's demo administrator logs in with a password (POST /auth/sessions).
ADMIN_LOGIN = "admin"
ADMIN_PASSWORD = "open-sesame-2026"  # noqa: S105 - printed demo password


@dataclass
class DemoLogins:
    tokens: dict[str, str] = field(default_factory=dict)  # org code -> token
    created: bool = False


def _uscc(seed: int) -> str:
    body = f"914419007{seed:08d}"
    return body + uscc.calc_check_digit(body)


def _id_region(policy_region: str) -> str:
    return policy_region if not policy_region.endswith("0000") else policy_region[:2] + "0102"


def load_demo(rt: Runtime, *, persons_per_unit: int = 4, flexible: int = 3) -> DemoLogins:
    """Create the demo region once; on later calls just return the logins."""
    logins = DemoLogins()
    policy = rt.policy
    with rt.uow() as uow:
        s = uow.session
        now = rt.now()
        existing = s.scalar(select(Organization).where(Organization.code == CENTER))
        orgs: list[tuple[str, str, str, str | None]] = [
            (OrgKind.CENTER, CENTER, f"{policy.region.name}社会保障卡管理中心", None),
            (OrgKind.SERVICE_POINT, "SP01", f"{policy.region.name}社保服务网点(一)", None),
            (OrgKind.BUREAU_WINDOW, "WIN01", f"{policy.region.name}社会保障局窗口", None),
            (OrgKind.HOTLINE, "HOTLINE12333", "12333 热线", None),
            (OrgKind.HOSPITAL, "HOSP01", f"{policy.region.name}人民医院", None),
            (OrgKind.PHARMACY, "PHARM01", "大参林药店(定点)", None),
            (OrgKind.GRASSROOTS, "GR01", "街道社保服务站", None),
            (OrgKind.PHOTO_STUDIO, "STUDIO01", "光影照相馆", None),
        ] + [(OrgKind.OUTLET, f"OUT-{b.code}", f"{b.name}营业部", b.code) for b in policy.banks]
        if existing is None:
            logins.created = True
            for kind, code, name, bank in orgs:
                parent = None
                if bank:
                    parent = s.scalar(select(Organization.id).where(Organization.code == bank))
                s.add(
                    Organization(
                        kind=kind,
                        code=code,
                        name=name,
                        parent_id=parent,
                        bank_code=bank,
                        # The demo's pharmacy and platform are authorised for every
                        # extended service (P-3).
                        authorisations=[v.value for v in Service]
                        if kind in (OrgKind.PHARMACY, OrgKind.GRASSROOTS)
                        else [],
                        created_at=now,
                    )
                )
            s.flush()
            _units_and_persons(s, rt, persons_per_unit, flexible)
        all_codes = (
            [o[1] for o in orgs]
            + [b.code for b in policy.banks]
            + ["U-ACME", "U-COOP", "U-VILLAGE"]
        )
        by_code = {
            o.code: o
            for o in s.scalars(select(Organization).where(Organization.code.in_(all_codes)))
        }
        for code in all_codes:
            org = by_code.get(code)
            if org is None:
                continue
            token = f"demo-{code.lower()}"
            if s.scalar(select(Staff.id).where(Staff.token_hash == hash_token(token))) is None:
                s.add(
                    Staff(
                        org_id=org.id,
                        name=f"{code} demo staff",
                        role="supervisor",
                        token_hash=hash_token(token),
                        created_at=now,
                    )
                )
            logins.tokens[code] = token
        center = by_code.get(CENTER)
        if center is not None:
            _demo_admin(s, center, now)
        uow.commit()
    return logins


def _demo_admin(s: Session, center: Organization, now: datetime) -> None:
    """The center's administrator with a login and the printed demo password."""
    from sscard.access.auth import hash_password

    taken = s.scalar(select(Staff.id).where(Staff.org_id == center.id, Staff.login == ADMIN_LOGIN))
    if taken is not None:
        return
    admin = Staff(
        org_id=center.id,
        name="CENTER administrator",
        role=Role.ADMINISTRATOR.value,
        login=ADMIN_LOGIN,
        token_hash=None,
        created_at=now,
    )
    s.add(admin)
    s.flush()
    s.add(
        Login(
            staff_id=admin.id,
            password_hash=hash_password(ADMIN_PASSWORD),
            password_set_at=now,
            failed_attempts=0,
            created_at=now,
        )
    )


def _units_and_persons(s: object, rt: Runtime, per_unit: int, flexible: int) -> None:
    from sqlalchemy.orm import Session

    assert isinstance(s, Session)
    policy = rt.policy
    now = rt.now()
    fake = Faker("zh_CN")
    Faker.seed(19)
    rng = random.Random(19)
    region = _id_region(policy.region.code)
    forced_comp = policy.bank_forcing.get("comprehensive_medical")  # type: ignore[call-overload]
    forced_village = policy.bank_forcing.get("village_community")  # type: ignore[call-overload]
    default_bank = policy.banks[-1].code
    units = [
        ("U-ACME", "东莞市示例电子科技有限公司", "ordinary", default_bank),
        ("U-COOP", "东莞市示例医疗合作单位", "comprehensive_medical", forced_comp or default_bank),
        ("U-VILLAGE", "示例村民委员会", "village_community", forced_village or default_bank),
    ]
    order = 100
    for i, (code, name, kind, bank) in enumerate(units):
        org = Organization(kind=OrgKind.UNIT, code=code, name=name, created_at=now)
        s.add(org)
        s.flush()
        s.add(
            Unit(
                org_id=org.id,
                uscc=_uscc(1000 + i),
                unit_kind=kind,
                agreement_bank_code=bank,
                agreement_signed_at=now,
            )
        )
        for _ in range(per_unit):
            order += 2
            s.add(_person(fake, rng, region, order, now, unit_org_id=org.id))
    for _ in range(flexible):
        order += 2
        s.add(_person(fake, rng, region, order, now, unit_org_id=None))
    s.flush()


def _person(
    fake: Faker,
    rng: random.Random,
    region: str,
    order: int,
    now: object,
    *,
    unit_org_id: int | None,
) -> Person:
    birth = date(1965, 1, 1) + timedelta(days=rng.randrange(0, 365 * 35))
    number = make_citizen_id(region, birth, order % 1000)
    has_old = rng.random() < 0.5
    return Person(
        id_number=number,
        id_kind="citizen",
        name=fake.name(),
        gender="male" if int(number[16]) % 2 else "female",
        birth_date=birth,
        status="employed" if unit_org_id else "unemployed",
        phone=f"13{rng.randrange(0, 10**9):09d}",
        unit_org_id=unit_org_id,
        medical_scheme=MedicalScheme.EMPLOYEE.value,
        insured_since=date(2020, 1, 1),
        old_medical_card_no=f"YB{rng.randrange(10**9):09d}" if has_old else None,
        old_medical_card_state=(OldCardState.NORMAL if has_old else OldCardState.NONE).value,
        created_at=now,
        updated_at=now,
    )
