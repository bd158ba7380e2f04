"""Publication rules the database enforces, whatever the client (ORM, admin, raw SQL).

A published document serves as prior art only if its date can't be back-dated
and its text never changes, so these rules live in the database, not in Python:

- INSERT: `published_at` is the server's clock and `sha256` the hash of `text`,
  whatever the client sent.
- UPDATE: the published text (title, abstract, claims, text), its hash, its
  date and its number are refused; embeddings, scores and flags may change.
- DELETE: refused unless a tombstone with the same id exists, so a withdrawn
  document's URL can answer 410 with its record.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION search_patent_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.published_at := now();
    NEW.sha256 := encode(sha256(convert_to(NEW.text, 'UTF8')), 'hex');
    RETURN NEW;
END $$;

CREATE TRIGGER search_patent_stamp BEFORE INSERT ON search_patent
    FOR EACH ROW EXECUTE FUNCTION search_patent_stamp();

CREATE FUNCTION search_patent_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id IS DISTINCT FROM OLD.id
       OR NEW.title IS DISTINCT FROM OLD.title
       OR NEW.abstract IS DISTINCT FROM OLD.abstract
       OR NEW.claims IS DISTINCT FROM OLD.claims
       OR NEW.text IS DISTINCT FROM OLD.text
       OR NEW.sha256 IS DISTINCT FROM OLD.sha256
       OR NEW.published_at IS DISTINCT FROM OLD.published_at THEN
        RAISE EXCEPTION 'published document % is immutable', OLD.id
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'Withdraw it (leaving a tombstone) and publish a new document instead.';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER search_patent_immutable BEFORE UPDATE ON search_patent
    FOR EACH ROW EXECUTE FUNCTION search_patent_immutable();

CREATE FUNCTION search_patent_require_tombstone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM search_tombstone WHERE id = OLD.id) THEN
        RAISE EXCEPTION 'published document % can only be withdrawn with a tombstone', OLD.id
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'Use Patent.withdraw(reason=...).';
    END IF;
    RETURN OLD;
END $$;

CREATE TRIGGER search_patent_require_tombstone BEFORE DELETE ON search_patent
    FOR EACH ROW EXECUTE FUNCTION search_patent_require_tombstone();
"""

BACKWARD = r"""
DROP TRIGGER search_patent_require_tombstone ON search_patent;
DROP FUNCTION search_patent_require_tombstone();
DROP TRIGGER search_patent_immutable ON search_patent;
DROP FUNCTION search_patent_immutable();
DROP TRIGGER search_patent_stamp ON search_patent;
DROP FUNCTION search_patent_stamp();
"""


class Migration(migrations.Migration):
    dependencies = [("search", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
