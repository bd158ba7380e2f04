"""SQL functions behind the search columns added in 0006.

- `search_structure_vector(title, abstract, claims, by_sentence)`: a tsvector
  whose positions count sentences (or paragraphs: the title, the abstract and
  each claim) instead of words. `a <0> b` against it means "in the same
  sentence", `a <2> b` "two sentences later": that is how the examiners'
  WITHn and SAMEn operators become ordinary tsquery phrase matches.
  Weights are those of the main search vector (title A, abstract B, claims C)
  so field qualifiers work with WITH and SAME too.
- `search_claims_text(claims)`: the claims' text in one string, for snippets.
- `search_cpc_subclasses(cpc)`: the distinct four-character CPC subclasses
  (H01M) of a document, indexed so a classification filter is a GIN lookup.

A sentence ends at . ! or ? followed by a capital, a digit-free opening
bracket or a quote, so "etc. and" and "FIG. 2" stay inside their sentence.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION search_structure_vector(title text, abstract text, claims jsonb, by_sentence boolean)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    WITH paragraphs(body, weight, paragraph) AS (
        SELECT title, 'A', 0
        UNION ALL SELECT abstract, 'B', 1
        UNION ALL
        SELECT claim ->> 'text', 'C', 1 + number
        FROM jsonb_array_elements(claims) WITH ORDINALITY AS c(claim, number)
    ), units AS (
        SELECT unit, weight,
               row_number() OVER (ORDER BY paragraph, sentence) AS position
        FROM paragraphs,
             LATERAL regexp_split_to_table(
                 body, CASE WHEN by_sentence THEN '(?<=[.!?])\s+(?=[A-Z("])' ELSE '$^' END
             ) WITH ORDINALITY AS s(unit, sentence)
    )
    SELECT coalesce(
        string_agg(
            '''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || ''':'
                || least(position, 16383) || weight,
            ' '
        ),
        ''
    )::tsvector
    FROM units, unnest(tsvector_to_array(to_tsvector('english'::regconfig, unit))) AS lexeme
$$;

CREATE FUNCTION search_claims_text(claims jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(claim ->> 'text', ' '), '') FROM jsonb_array_elements(claims) AS claim
$$;

CREATE FUNCTION search_cpc_subclasses(cpc varchar[]) RETURNS varchar[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT upper(left(code, 4))), '{}')
    FROM unnest(cpc) AS code
    WHERE length(code) >= 4
$$;
"""

BACKWARD = r"""
DROP FUNCTION search_cpc_subclasses(varchar[]);
DROP FUNCTION search_claims_text(jsonb);
DROP FUNCTION search_structure_vector(text, text, jsonb, boolean);
"""


class Migration(migrations.Migration):
    dependencies = [("search", "0004_backfill_minhash_bands")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
