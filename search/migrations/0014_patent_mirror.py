"""Mirrors: a copy of another installation's record keeps the origin's dates, and nothing else is stored.

On an installation that mirrors another (a row in publications_mirror):
- INSERT keeps the `published_at` and `publication_date` the copy was given (the origin's,
  verified against its daily manifests before it is stored) and stamps `first_seen_at` with this server's clock; a
  document that is not a copy (no `mirrored_from`) is refused, since its number would be the
  origin's to give.
Everywhere else a copy is refused, so nobody can back-date a document by calling it one. The
update rule now also keeps `mirrored_from` and `first_seen_at`.
"""

from django.db import migrations, models

FORWARD = r"""
CREATE OR REPLACE FUNCTION search_patent_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM publications_mirror) THEN
        IF NEW.mirrored_from = '' THEN
            RAISE EXCEPTION 'this installation is a mirror: it stores copies of its origin''s documents only'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        NEW.first_seen_at := now();
    ELSE
        IF NEW.mirrored_from <> '' THEN
            RAISE EXCEPTION 'only a mirror installation stores copies of another site''s documents'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        NEW.published_at := now();
        NEW.publication_date := coalesce(NEW.source_date, (now() AT TIME ZONE 'UTC')::date);
        NEW.first_seen_at := NULL;
    END IF;
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
       OR NEW.publication_date IS DISTINCT FROM OLD.publication_date
       OR NEW.mirrored_from IS DISTINCT FROM OLD.mirrored_from
       OR NEW.first_seen_at IS DISTINCT FROM OLD.first_seen_at THEN
        RAISE EXCEPTION 'published document % is immutable', OLD.id
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'Withdraw it (leaving a tombstone) and publish a new document instead.';
    END IF;
    RETURN NEW;
END $$;
"""

# Migration 0007's functions, as they were.
BACKWARD = r"""
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
"""


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0013_patent_contribution"),
        ("publications", "0004_mirror"),
    ]

    operations = [
        migrations.AddField(
            model_name="patent",
            name="first_seen_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="patent",
            name="mirrored_from",
            field=models.URLField(blank=True, max_length=500),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
