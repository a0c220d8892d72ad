"""assets: filter indexes that match the default sort, substring search index

Revision ID: 0005_assets_search
Revises: 0004_tickets
Create Date: 2026-11-25 15:00:00

"""
from alembic import op

revision = '0005_assets_search'
down_revision = '0004_tickets'
branch_labels = None
depends_on = None

# Substring search over assets.search_text: an FTS5 trigram index on SQLite (kept in step by
# triggers), a pg_trgm GIN index on PostgreSQL (which serves LIKE '%term%' directly).
SQLITE_SEARCH = [
    "CREATE VIRTUAL TABLE fts_assets USING fts5(search_text, content='assets', content_rowid='id', "
    "tokenize='trigram')",
    "INSERT INTO fts_assets(fts_assets) VALUES ('rebuild')",
    "CREATE TRIGGER fts_assets_insert AFTER INSERT ON assets BEGIN "
    "INSERT INTO fts_assets(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER fts_assets_delete AFTER DELETE ON assets BEGIN "
    "INSERT INTO fts_assets(fts_assets, rowid, search_text) VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER fts_assets_update AFTER UPDATE OF search_text ON assets BEGIN "
    "INSERT INTO fts_assets(fts_assets, rowid, search_text) VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO fts_assets(rowid, search_text) VALUES (new.id, new.search_text); END",
]
SQLITE_SEARCH_DROP = [
    "DROP TRIGGER IF EXISTS fts_assets_update", "DROP TRIGGER IF EXISTS fts_assets_delete",
    "DROP TRIGGER IF EXISTS fts_assets_insert", "DROP TABLE IF EXISTS fts_assets",
]
POSTGRES_SEARCH = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_fts_assets_search_text ON assets USING gin (search_text gin_trgm_ops)",
]


def upgrade():
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.drop_index('ix_assets_location')
        batch_op.create_index('ix_assets_kind_tag', ['kind', 'tag'], unique=False)
        batch_op.create_index('ix_assets_status_tag', ['status', 'tag'], unique=False)
        batch_op.create_index('ix_assets_location_tag', ['location', 'tag'], unique=False)
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES_SEARCH if postgres else SQLITE_SEARCH:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_fts_assets_search_text")
    else:
        for statement in SQLITE_SEARCH_DROP:
            op.execute(statement)
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.drop_index('ix_assets_location_tag')
        batch_op.drop_index('ix_assets_status_tag')
        batch_op.drop_index('ix_assets_kind_tag')
        batch_op.create_index('ix_assets_location', ['location'], unique=False)
