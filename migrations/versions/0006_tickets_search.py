"""tickets: one full-text document per ticket on SQLite

Revision ID: 0006_tickets_search
Revises: 0005_assets_search
Create Date: 2026-11-25 17:00:00

"""
from alembic import context, op

revision = '0006_tickets_search'
down_revision = '0005_assets_search'
branch_labels = None
depends_on = None

# SQLite: one FTS5 row per ticket (rowid = ticket id) holding its title, body, public comments and
# internal notes, replacing 0004's two tables (tickets, comments) whose OR made common words slow.
# "Newest matches first" is then one walk down the index in rowid order that stops after a page.
# The table keeps its own copy of the text: the comment columns are aggregates, which an external
# content table could only delete from the index if a trigger rebuilt the exact old text. Triggers
# keep it in step; a comment change rebuilds that ticket's two comment columns. columnsize=0: no
# per-row token counts, which only ranking (bm25) would read.
# PostgreSQL keeps 0004's generated tsvector columns and GIN indexes: nothing to do there.
SEARCH_TABLE = "fts_ticket_documents"
SQLITE_TABLE = (
    f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5(title, body, public_comments, internal_comments, "
    "columnsize=0, tokenize='porter unicode61 remove_diacritics 2')")
# Every filed ticket commits a small segment of its own; merging them 8 at a time instead of 4 halves the
# merge work (0.3 ms of the 5 ms CPU a new ticket cost) and left searches as fast.
SQLITE_SETTINGS = f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}, rank) VALUES ('automerge', 8)"


def _comments_of(ticket_id: str, internal: bool) -> str:
    """The text of a ticket's public comments or internal notes, as one value (NULL when none)."""
    return (f"(SELECT group_concat(c.body, char(10)) FROM ticket_comments AS c "
            f"WHERE c.ticket_id = {ticket_id} AND {'' if internal else 'NOT '}c.internal)")


def _refresh_comments(ticket_id: str) -> str:
    return (f"UPDATE {SEARCH_TABLE} SET public_comments = {_comments_of(ticket_id, False)}, "
            f"internal_comments = {_comments_of(ticket_id, True)} WHERE rowid = {ticket_id};")


# Every ticket's document at once: the upgrade's backfill, and the bench seed's build after a bulk load.
SQLITE_BACKFILL = (
    f"INSERT INTO {SEARCH_TABLE}(rowid, title, body, public_comments, internal_comments) "
    f"SELECT t.id, t.title, t.body, {_comments_of('t.id', False)}, {_comments_of('t.id', True)} "
    "FROM tickets AS t ORDER BY t.id")
SQLITE_TRIGGERS = {
    "fts_ticket_documents_ticket_insert": "AFTER INSERT ON tickets BEGIN "
    f"INSERT INTO {SEARCH_TABLE}(rowid, title, body) VALUES (new.id, new.title, new.body); END",
    "fts_ticket_documents_ticket_update": "AFTER UPDATE OF title, body ON tickets BEGIN "
    f"UPDATE {SEARCH_TABLE} SET title = new.title, body = new.body WHERE rowid = new.id; END",
    "fts_ticket_documents_ticket_delete": "AFTER DELETE ON tickets BEGIN "
    f"DELETE FROM {SEARCH_TABLE} WHERE rowid = old.id; END",
    "fts_ticket_documents_comment_insert": "AFTER INSERT ON ticket_comments BEGIN "
    f"{_refresh_comments('new.ticket_id')} END",
    "fts_ticket_documents_comment_update": "AFTER UPDATE OF body, internal, ticket_id ON ticket_comments BEGIN "
    f"{_refresh_comments('new.ticket_id')} {_refresh_comments('old.ticket_id')} END",
    "fts_ticket_documents_comment_delete": "AFTER DELETE ON ticket_comments BEGIN "
    f"{_refresh_comments('old.ticket_id')} END",
}
CREATE_TRIGGERS = [f"CREATE TRIGGER {name} {body}" for name, body in SQLITE_TRIGGERS.items()]
DROP_TRIGGERS = [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS]
# 0004's tables, indexed again from their content on the way down.
OLD_TABLES = ("fts_tickets", "fts_ticket_comments")


def _tickets_migration():
    return context.script.get_revision("0004_tickets").module


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        return
    for statement in _tickets_migration().SQLITE_SEARCH_DROP:
        op.execute(statement)
    for statement in [SQLITE_TABLE, SQLITE_SETTINGS, SQLITE_BACKFILL, *CREATE_TRIGGERS]:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        return
    for statement in [*DROP_TRIGGERS, f"DROP TABLE IF EXISTS {SEARCH_TABLE}", *_tickets_migration().SQLITE_SEARCH]:
        op.execute(statement)
    for table in OLD_TABLES:
        op.execute(f"INSERT INTO {table}({table}) VALUES ('rebuild')")
