"""Keep the search columns right for any client.

- `publication_date` is stamped on INSERT with the other publication facts
  (a reference patent keeps its own date, a generated one gets today's UTC
  date) and joins the columns an UPDATE may not change.
- Every word of newly published text lands in `search_searchterm`, from one
  statement trigger per INSERT statement so a bulk load pays one pass.
"""

from django.db import migrations

FORWARD = r"""
UPDATE search_patent SET publication_date = coalesce(source_date, (published_at AT TIME ZONE 'UTC')::date);

CREATE OR REPLACE FUNCTION search_patent_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.published_at := now();
    NEW.publication_date := coalesce(NEW.source_date, (now() AT TIME ZONE 'UTC')::date);
    NEW.sha256 := encode(sha256(convert_to(NEW.text, 'UTF8')), 'hex');
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION search_patent_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id IS DISTINCT FROM OLD.id
       OR NEW.title IS DISTINCT FROM OLD.title
       OR NEW.abstract IS DISTINCT FROM OLD.abstract
       OR NEW.claims IS DISTINCT FROM OLD.claims
       OR NEW.text IS DISTINCT FROM OLD.text
       OR NEW.sha256 IS DISTINCT FROM OLD.sha256
       OR NEW.published_at IS DISTINCT FROM OLD.published_at
       OR NEW.publication_date IS DISTINCT FROM OLD.publication_date THEN
        RAISE EXCEPTION 'published document % is immutable', OLD.id
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'Withdraw it (leaving a tombstone) and publish a new document instead.';
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION search_patent_collect_terms() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_searchterm (word, lexeme)
    SELECT word, stem[1]
    FROM (
        SELECT DISTINCT word
        FROM published, regexp_split_to_table(lower(published.text), '[^[:alnum:]]+') AS word
        WHERE length(word) BETWEEN 1 AND 64
    ) words, ts_lexize('english_stem', word) AS stem
    WHERE stem[1] IS NOT NULL  -- stop words have no stem
    ON CONFLICT (word) DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER search_patent_collect_terms AFTER INSERT ON search_patent
    REFERENCING NEW TABLE AS published
    FOR EACH STATEMENT EXECUTE FUNCTION search_patent_collect_terms();

INSERT INTO search_searchterm (word, lexeme)
SELECT word, stem[1]
FROM (
    SELECT DISTINCT word
    FROM search_patent, regexp_split_to_table(lower(search_patent.text), '[^[:alnum:]]+') AS word
    WHERE length(word) BETWEEN 1 AND 64
) words, ts_lexize('english_stem', word) AS stem
WHERE stem[1] IS NOT NULL
ON CONFLICT (word) DO NOTHING;
"""

BACKWARD = r"""
DROP TRIGGER search_patent_collect_terms ON search_patent;
DROP FUNCTION search_patent_collect_terms();
"""


class Migration(migrations.Migration):
    dependencies = [("search", "0006_search_columns")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
