"""audit trail partitioned by month, with only the indexes its queries need

On PostgreSQL ``audit_records`` becomes a table partitioned by month of
``occurred_at`` (RANGE, UTC months): the existing rows are copied with their ids, chain
columns and hashes, so the chain verifies as before. The primary key becomes
``(id, occurred_at)`` (a partitioned table's keys hold its partition key); the chain's
hashes are stored as their 32 raw bytes (``bytea``) instead of 64 hex characters. The
function ``audit_records_add_partitions(start, months)`` creates the months from
``start`` on that do not exist yet; this migration creates them from the oldest entry's
month to three months ahead, and the sweeper keeps three months ahead. Entries of a
month without its partition land in ``audit_records_default``; a month whose entries
are already there keeps them there (its partition is not created).
The append-only trigger is defined on the partitioned table, so every partition has it.

Indexes kept: the key, ``person_id`` (the holder's access log, the center's filter),
``chain_seq`` (BRIN on PostgreSQL: verification walks it in order, and seqs follow the
order of writing) and the sealer's partial queue of unsealed entries. Dropped: subject,
(person, occurred_at), (person, kind, id), (actor org, id), (action, id), (kind, id),
(occurred_at, id) and the unique constraint on ``chain_seq`` (the sealer's lock on the
chain head gives out each seq once; verification finds a repeated one).

``card_transitions`` and ``fees`` lose their index on ``person_id``: no query reads
them by person (a card's history is read by card). The cards' deadline indexes on
``(state, due column)`` for a column set only for a while (oral report lapse, waiting at
the outlet, a unit's hand-out) become partial indexes of the cards it is set for. The
outbox's replay indexes become partial (only events with the party's column), and its
retention index on ``occurred_at`` a BRIN index on PostgreSQL.

SQLite keeps one table, its key and its hex hashes; its indexes change as above (the
table is rebuilt to lose the unique constraint, and migration 0007's triggers made
again).

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-03 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONTHS_AHEAD = 3

COLUMNS = (
    "id, occurred_at, kind, actor_staff_id, actor_org_id, actor_person_id, source, channel, "
    "action, subject_type, subject_id, person_id, detail, chain_seq"
)

OLD_INDEXES = (
    "ix_audit_records_subject",
    "ix_audit_records_person",
    "ix_audit_records_person_kind",
    "ix_audit_records_actor_org",
    "ix_audit_records_action",
    "ix_audit_records_kind",
    "ix_audit_records_occurred",
    "ix_audit_records_unsealed",
)

# Fixed-width columns first: no alignment padding between them and the text ones.
PARTITIONED = """
CREATE TABLE audit_records (
    id bigint NOT NULL DEFAULT nextval('audit_records_id_seq'),
    occurred_at timestamp with time zone NOT NULL,
    actor_staff_id bigint,
    actor_org_id bigint,
    actor_person_id bigint,
    subject_id bigint,
    person_id bigint,
    chain_seq bigint,
    kind varchar(12) NOT NULL DEFAULT 'change',
    source varchar(64) NOT NULL DEFAULT 'system',
    channel varchar(20) NOT NULL,
    action varchar(48) NOT NULL,
    subject_type varchar(32) NOT NULL,
    detail json NOT NULL,
    prev_hash bytea,
    entry_hash bytea,
    CONSTRAINT pk_audit_records PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at)
"""

ADD_PARTITIONS = """
CREATE FUNCTION audit_records_add_partitions(start timestamptz, months integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    first timestamptz := date_trunc('month', start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    lo timestamptz;
    hi timestamptz;
    name text;
    made integer := 0;
BEGIN
    -- One creator at a time; the others find the months made.
    PERFORM pg_advisory_xact_lock(hashtext('audit_records_add_partitions'));
    FOR i IN 0 .. months - 1 LOOP
        lo := ((first AT TIME ZONE 'UTC') + make_interval(months => i)) AT TIME ZONE 'UTC';
        hi := ((first AT TIME ZONE 'UTC') + make_interval(months => i + 1)) AT TIME ZONE 'UTC';
        name := 'audit_records_' || to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM');
        CONTINUE WHEN to_regclass(name) IS NOT NULL;
        -- A month whose entries already wait in the default partition stays there.
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM audit_records_default WHERE occurred_at >= lo AND occurred_at < hi
        );
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF audit_records FOR VALUES FROM (%L) TO (%L)',
            name, lo, hi
        );
        made := made + 1;
    END LOOP;
    RETURN made;
END
$$
"""

APPEND_ONLY_TRIGGER = """
CREATE TRIGGER audit_records_append_only
BEFORE UPDATE OR DELETE ON audit_records
FOR EACH ROW EXECUTE FUNCTION audit_records_append_only()
"""


def _indexes() -> None:
    op.execute("CREATE INDEX ix_audit_records_person ON audit_records (person_id)")
    op.execute("CREATE INDEX ix_audit_records_chain_seq ON audit_records USING brin (chain_seq)")
    op.execute(
        "CREATE INDEX ix_audit_records_unsealed ON audit_records (id) WHERE chain_seq IS NULL"
    )


# Migration 0007's SQLite triggers, recreated after the table is rebuilt.
_KEPT = (
    "id",
    "occurred_at",
    "kind",
    "actor_staff_id",
    "actor_org_id",
    "actor_person_id",
    "source",
    "channel",
    "action",
    "subject_type",
    "subject_id",
    "person_id",
    "detail",
)
SQLITE_SEAL_ONLY = f"""
CREATE TRIGGER audit_records_no_update
BEFORE UPDATE ON audit_records
WHEN NOT (
    OLD.chain_seq IS NULL AND OLD.prev_hash IS NULL AND OLD.entry_hash IS NULL
    AND NEW.chain_seq IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.entry_hash IS NOT NULL
    AND {" AND ".join(f"NEW.{c} IS OLD.{c}" for c in _KEPT)}
)
BEGIN
    SELECT RAISE(ABORT, 'audit_records is append-only: UPDATE refused');
END
"""
SQLITE_NO_DELETE = """
CREATE TRIGGER audit_records_no_delete
BEFORE DELETE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit_records is append-only: DELETE refused');
END
"""


def _sqlite_upgrade() -> None:
    for name in OLD_INDEXES[:-1]:
        op.drop_index(name, table_name="audit_records")
    # Dropping the unique constraint rebuilds the table, and its triggers with it.
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.drop_constraint("uq_audit_records_chain_seq", type_="unique")
    op.execute(SQLITE_SEAL_ONLY)
    op.execute(SQLITE_NO_DELETE)
    op.create_index("ix_audit_records_person", "audit_records", ["person_id"])
    op.create_index("ix_audit_records_chain_seq", "audit_records", ["chain_seq"])


def _sqlite_downgrade() -> None:
    op.drop_index("ix_audit_records_chain_seq", table_name="audit_records")
    op.drop_index("ix_audit_records_person", table_name="audit_records")
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_audit_records_chain_seq", ["chain_seq"])
    op.execute(SQLITE_SEAL_ONLY)
    op.execute(SQLITE_NO_DELETE)
    _old_indexes()


# Per-card tables: indexes no query uses (a card's history is read by card).
UNUSED = (
    ("ix_card_transitions_person_id", "card_transitions", "person_id"),
    ("ix_fees_person_id", "fees", "person_id"),
)


# Card deadlines set only for a while: a partial index of the cards they are set for.
SET_FOR_A_WHILE = (
    ("ix_cards_state_lapse", "oral_loss_lapses_at"),
    ("ix_cards_state_outlet_since", "at_outlet_since"),
    ("ix_cards_state_handout_due", "handout_due"),
)


# The outbox: replay indexes of the events that have the party's column; retention by
# a BRIN index on PostgreSQL (events are written in time order).
REPLAY_SCOPES = (("bank", "bank_code"), ("unit", "unit_org_id"), ("actor", "actor_org_id"))


def _outbox_upgrade() -> None:
    for name, column in REPLAY_SCOPES:
        op.drop_index(f"ix_outbox_events_{name}_seq", table_name="outbox_events")
        op.create_index(
            f"ix_outbox_events_{name}_seq",
            "outbox_events",
            [column, "seq"],
            postgresql_where=sa.text(f"{column} IS NOT NULL"),
            sqlite_where=sa.text(f"{column} IS NOT NULL"),
        )
    if op.get_context().dialect.name == "postgresql":
        op.drop_index("ix_outbox_events_occurred_at", table_name="outbox_events")
        op.create_index(
            "ix_outbox_events_occurred_at",
            "outbox_events",
            ["occurred_at"],
            postgresql_using="brin",
        )


def _outbox_downgrade() -> None:
    for name, column in REPLAY_SCOPES:
        op.drop_index(f"ix_outbox_events_{name}_seq", table_name="outbox_events")
        op.create_index(f"ix_outbox_events_{name}_seq", "outbox_events", [column, "seq"])
    if op.get_context().dialect.name == "postgresql":
        op.drop_index("ix_outbox_events_occurred_at", table_name="outbox_events")
        op.create_index("ix_outbox_events_occurred_at", "outbox_events", ["occurred_at"])


def upgrade() -> None:
    _outbox_upgrade()
    for name, table, _ in UNUSED:
        op.drop_index(name, table_name=table)
    for name, column in SET_FOR_A_WHILE:
        op.drop_index(name, table_name="cards")
        op.create_index(
            f"ix_cards_{column}",
            "cards",
            [column],
            postgresql_where=sa.text(f"{column} IS NOT NULL"),
            sqlite_where=sa.text(f"{column} IS NOT NULL"),
        )
    if op.get_context().dialect.name != "postgresql":
        _sqlite_upgrade()
        return
    op.execute("DROP TRIGGER audit_records_append_only ON audit_records")
    for name in OLD_INDEXES:
        op.execute(f"DROP INDEX {name}")
    op.execute("ALTER TABLE audit_records DROP CONSTRAINT uq_audit_records_chain_seq")
    op.execute("ALTER TABLE audit_records DROP CONSTRAINT pk_audit_records")
    op.execute("ALTER TABLE audit_records RENAME TO audit_records_unpartitioned")
    op.execute("ALTER SEQUENCE audit_records_id_seq OWNED BY NONE")
    op.execute(PARTITIONED)
    op.execute("CREATE TABLE audit_records_default PARTITION OF audit_records DEFAULT")
    op.execute(ADD_PARTITIONS)
    oldest, now = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT coalesce(min(occurred_at), now()), now() FROM audit_records_unpartitioned"
            )
        )
        .one()
    )
    months = (now.year - oldest.year) * 12 + now.month - oldest.month + 1 + MONTHS_AHEAD
    op.execute(
        sa.text("SELECT audit_records_add_partitions(:start, :months)").bindparams(
            start=oldest, months=months
        )
    )
    op.execute(
        f"INSERT INTO audit_records ({COLUMNS}, prev_hash, entry_hash)"  # noqa: S608 (constants)
        f" SELECT {COLUMNS}, decode(prev_hash, 'hex'), decode(entry_hash, 'hex')"
        " FROM audit_records_unpartitioned ORDER BY id"
    )
    op.execute("DROP TABLE audit_records_unpartitioned")
    op.execute("ALTER SEQUENCE audit_records_id_seq OWNED BY audit_records.id")
    _indexes()
    op.execute(APPEND_ONLY_TRIGGER)


def downgrade() -> None:
    _outbox_downgrade()
    for name, table, column in UNUSED:
        op.create_index(name, table, [column])
    for name, column in SET_FOR_A_WHILE:
        op.drop_index(f"ix_cards_{column}", table_name="cards")
        op.create_index(name, "cards", ["state", column])
    if op.get_context().dialect.name != "postgresql":
        _sqlite_downgrade()
        return
    op.execute("DROP TRIGGER audit_records_append_only ON audit_records")
    op.execute("ALTER TABLE audit_records RENAME TO audit_records_partitioned")
    op.execute("ALTER INDEX ix_audit_records_person RENAME TO ix_audit_records_person_0015")
    op.execute("ALTER INDEX ix_audit_records_unsealed RENAME TO ix_audit_records_unsealed_0015")
    op.execute(
        "ALTER TABLE audit_records_partitioned RENAME CONSTRAINT pk_audit_records TO pk_0015"
    )
    op.execute("ALTER SEQUENCE audit_records_id_seq OWNED BY NONE")
    op.execute("CREATE TABLE audit_records (LIKE audit_records_partitioned INCLUDING DEFAULTS)")
    op.execute("ALTER TABLE audit_records ALTER COLUMN prev_hash TYPE varchar(64)")
    op.execute("ALTER TABLE audit_records ALTER COLUMN entry_hash TYPE varchar(64)")
    op.execute(
        f"INSERT INTO audit_records ({COLUMNS}, prev_hash, entry_hash)"  # noqa: S608 (constants)
        f" SELECT {COLUMNS}, encode(prev_hash, 'hex'), encode(entry_hash, 'hex')"
        " FROM audit_records_partitioned ORDER BY id"
    )
    op.execute("DROP TABLE audit_records_partitioned")
    op.execute("DROP FUNCTION audit_records_add_partitions(timestamptz, integer)")
    op.execute("ALTER SEQUENCE audit_records_id_seq OWNED BY audit_records.id")
    op.execute("ALTER TABLE audit_records ADD CONSTRAINT pk_audit_records PRIMARY KEY (id)")
    op.execute(
        "ALTER TABLE audit_records ADD CONSTRAINT uq_audit_records_chain_seq UNIQUE (chain_seq)"
    )
    op.execute(
        "CREATE INDEX ix_audit_records_unsealed ON audit_records (id) WHERE chain_seq IS NULL"
    )
    _old_indexes()
    op.execute(APPEND_ONLY_TRIGGER)


def _old_indexes() -> None:
    for name, columns in (
        ("ix_audit_records_subject", ["subject_type", "subject_id"]),
        ("ix_audit_records_person", ["person_id", "occurred_at"]),
        ("ix_audit_records_person_kind", ["person_id", "kind", "id"]),
        ("ix_audit_records_actor_org", ["actor_org_id", "id"]),
        ("ix_audit_records_action", ["action", "id"]),
        ("ix_audit_records_kind", ["kind", "id"]),
        ("ix_audit_records_occurred", ["occurred_at", "id"]),
    ):
        op.create_index(name, "audit_records", columns)
