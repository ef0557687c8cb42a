"""Region policy: every number and choice that DOMAIN.md marks as policy.

One TOML file per region. ``load_policy`` refuses a bad file with the line and the
reason, so a service never starts on a policy it misread.
"""

from __future__ import annotations

import re
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

PRESETS_DIR = Path(__file__).resolve().parent.parent / "policies"


class Channel(StrEnum):
    """Where or how an act is done (V-1, L-1, L-2)."""

    OUTLET = "outlet"
    HOSPITAL = "hospital"
    PHARMACY = "pharmacy"
    BUREAU_WINDOW = "bureau_window"
    PHONE_12333 = "phone_12333"
    ONLINE = "online"
    BANK_FINANCIAL = "bank_financial"
    GRASSROOTS = "grassroots"
    SERVICE_POINT = "service_point"
    BANK_PHONE = "bank_phone"
    ONLINE_BANKING = "online_banking"
    UNIT = "unit"
    SYSTEM = "system"


class UnitKind(StrEnum):
    """Kinds of insured unit that the bank-forcing rule can name (B-2)."""

    ORDINARY = "ordinary"
    COMPREHENSIVE_MEDICAL = "comprehensive_medical"
    VILLAGE_COMMUNITY = "village_community"


class AgentAct(StrEnum):
    """Acts an agent may be allowed to do for someone (A-5)."""

    APPLICATION = "application"
    BANK_CHOICE = "bank_choice"
    PICKUP = "pickup"
    ACTIVATION = "activation"
    LOSS_REPORT = "loss_report"
    CANCEL_LOSS_REPORT = "cancel_loss_report"
    REPLACEMENT = "replacement"
    CHANGE = "change"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - an act, not a secret


ACTIVATION_CHANNELS = frozenset(
    {
        Channel.OUTLET,
        Channel.HOSPITAL,
        Channel.PHARMACY,
        Channel.BUREAU_WINDOW,
        Channel.PHONE_12333,
        Channel.ONLINE,
        Channel.BANK_FINANCIAL,
        Channel.GRASSROOTS,
    }
)
ORAL_LOSS_CHANNELS = frozenset({Channel.BANK_PHONE, Channel.ONLINE_BANKING, Channel.PHONE_12333})

Code = Annotated[str, Field(pattern=r"^[A-Z0-9_]{2,16}$")]
Bin = Annotated[str, Field(pattern=r"^[0-9]{6,8}$")]
Fen = Annotated[int, Field(ge=0, le=100_000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegionSection(_Strict):
    code: Annotated[str, Field(pattern=r"^[0-9]{6}$")]
    name: Annotated[str, Field(min_length=1)]
    name_en: Annotated[str, Field(min_length=1)]
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not an IANA time zone such as Asia/Shanghai") from None
        return value


class BankSection(_Strict):
    code: Code
    name: Annotated[str, Field(min_length=1)]
    name_en: Annotated[str, Field(min_length=1)]
    bin_prefixes: Annotated[list[Bin], Field(min_length=1)]


class DeadlineSection(_Strict):
    production_working_days: Annotated[int, Field(ge=1, le=365)] = 30
    handout_working_days: Annotated[int, Field(ge=1, le=60)] = 5
    form_return_working_days: Annotated[int, Field(ge=1, le=120)] = 15
    oral_loss_natural_days: Annotated[int, Field(ge=1, le=60)] = 5
    unclaimed_destroy_days: Annotated[int, Field(ge=30, le=3650)] = 180
    old_card_restrict_months: Annotated[int, Field(ge=1, le=60)] = 6
    financial_activation_days: Annotated[int, Field(ge=30, le=3650)] = 300
    card_validity_years: Annotated[int, Field(ge=1, le=30)] = 10


def _only(allowed: frozenset[Channel], what: str, channels: list[Channel]) -> list[Channel]:
    bad = [c for c in channels if c not in allowed]
    if bad:
        raise ValueError(f"'{bad[0]}' is not {what}; use " + ", ".join(sorted(allowed)))
    return channels


class ActivationSection(_Strict):
    channels: Annotated[list[Channel], Field(min_length=1)]

    @field_validator("channels")
    @classmethod
    def _only_activation_channels(cls, value: list[Channel]) -> list[Channel]:
        return _only(ACTIVATION_CHANNELS, "an activation channel", value)


class LossSection(_Strict):
    oral_channels: Annotated[list[Channel], Field(min_length=1)]

    @field_validator("oral_channels")
    @classmethod
    def _only_oral_channels(cls, value: list[Channel]) -> list[Channel]:
        return _only(ORAL_LOSS_CHANNELS, "an oral loss report channel", value)


class AgentSection(_Strict):
    allowed: list[AgentAct]


class FeeSection(_Strict):
    first_card_fen: Fen = 0
    replacement_fen: Fen = 2000
    change_fen: Fen = 2000
    loss_report_fen: Fen = 0
    quality_problem_free: bool = True


class PasswordSection(_Strict):
    max_wrong_attempts: Annotated[int, Field(ge=1, le=20)] = 3


class LoginSection(_Strict):
    """Logins of staff and cardholders: lockout, session lifetimes, credential rotation."""

    max_failed_attempts: Annotated[int, Field(ge=1, le=50)] = 5
    lockout_minutes: Annotated[int, Field(ge=1, le=1440)] = 15
    session_idle_minutes: Annotated[int, Field(ge=2, le=1440)] = 30
    session_absolute_hours: Annotated[int, Field(ge=1, le=168)] = 12
    credential_grace_hours: Annotated[int, Field(ge=0, le=720)] = 24


class RegionPolicy(_Strict):
    region: RegionSection
    banks: Annotated[list[BankSection], Field(min_length=1)]
    bank_forcing: dict[UnitKind, Code] = Field(default_factory=dict)
    deadlines: DeadlineSection = DeadlineSection()
    activation: ActivationSection
    loss: LossSection
    agents: AgentSection
    fees: FeeSection = FeeSection()
    passwords: PasswordSection = PasswordSection()
    logins: LoginSection = LoginSection()

    @field_validator("banks")
    @classmethod
    def _unique_banks(cls, banks: list[BankSection]) -> list[BankSection]:
        codes = [b.code for b in banks]
        dupes = {c for c in codes if codes.count(c) > 1}
        if dupes:
            raise ValueError(f"bank code '{sorted(dupes)[0]}' appears twice in [[banks]]")
        return banks

    @field_validator("bank_forcing")
    @classmethod
    def _forced_banks_exist(
        cls, forcing: dict[UnitKind, str], info: ValidationInfo
    ) -> dict[UnitKind, str]:
        codes = {b.code for b in info.data.get("banks", [])}
        for kind, code in forcing.items():
            if code not in codes:
                raise ValueError(f"{kind} names bank '{code}', which is not in [[banks]]")
        return forcing

    def bank(self, code: str) -> BankSection | None:
        return next((b for b in self.banks if b.code == code), None)

    def agent_may(self, act: AgentAct) -> bool:
        return act in self.agents.allowed


class PolicyError(Exception):
    """A policy file that cannot be used, with where and why."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {reason}")
        self.source = source
        self.line = line
        self.reason = reason


def resolve_policy_path(name_or_path: str) -> Path:
    """A preset name (``dongguan``) or a path to a TOML file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        return candidate
    return PRESETS_DIR / f"{name_or_path}.toml"


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def load_policy(name_or_path: str) -> RegionPolicy:
    """Read and check a region policy; raise PolicyError naming the line and reason."""
    path = resolve_policy_path(name_or_path)
    if not path.exists():
        raise PolicyError(
            str(path), None, f"no such policy file; presets are: {', '.join(preset_names())}"
        )
    return parse_policy(path.read_text(encoding="utf-8"), source=str(path))


def parse_policy(text: str, *, source: str = "policy") -> RegionPolicy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise PolicyError(source, int(match.group(1)) if match else None, str(exc)) from None
    try:
        return RegionPolicy.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        reason = err["msg"].removeprefix("Value error, ")
        where = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            reason = f"unknown key '{loc[-1]}'"
        elif err["type"] == "missing":
            reason = f"'{where}' is required"
        else:
            reason = f"{where}: {reason}"
        raise PolicyError(source, _find_line(text, loc, reason), reason) from None


def _find_line(text: str, loc: tuple[Any, ...], reason: str) -> int | None:
    """The line a validation error at ``loc`` is about.

    The key's own line where the error names one; else the line inside the section
    that holds the quoted offending value (for a duplicate, its repetition); else the
    section's header.
    """
    lines = text.splitlines()
    keys = [p for p in loc if isinstance(p, str) and p != "[key]"]
    if not keys:
        return None
    table = keys[0]
    header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
    starts = [n for n, line in enumerate(lines, start=1) if header.match(line)]
    if not starts:
        top = re.compile(rf"^\s*{re.escape(table)}\s*=")
        return next((n for n, line in enumerate(lines, start=1) if top.match(line)), None)
    index = next((p for p in loc[1:2] if isinstance(p, int)), None)
    if index is not None and index < len(starts):
        starts = [starts[index]]
    sections = [(start, _section_end(lines, start)) for start in starts]
    if len(keys) > 1:
        key = re.compile(rf"^\s*{re.escape(keys[-1])}\s*=")
        for start, end in sections:
            for n in range(start + 1, end + 1):
                if key.match(lines[n - 1]):
                    return n
    for token in reversed(re.findall(r"'([^']+)'", reason)):
        quoted = re.compile(rf"[\"']{re.escape(token)}[\"']")
        hits = [
            n
            for start, end in sections
            for n in range(start + 1, end + 1)
            if quoted.search(lines[n - 1].split("#", 1)[0])
        ]
        if hits:
            return hits[-1]
    return sections[0][0]


def _section_end(lines: list[str], start: int) -> int:
    for n in range(start + 1, len(lines) + 1):
        if lines[n - 1].lstrip().startswith("["):
            return n - 1
    return len(lines)
