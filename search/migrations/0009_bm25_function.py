"""`search_bm25(vector, terms, idfs, average_length)`: Okapi BM25 (k1 1.2, b 0.75) of one document.

PostgreSQL has no BM25, and a tsvector does not expose term counts to SQL
without unnesting it. ts_rank of a one-word query with unit weights and no
normalisation is sum(1/j^2, j = 1..tf) / (pi^2/6), which grows with the count
tf one-to-one; its tail is 1/(tf + 1/2), so tf = 1 / (pi^2/6 * (1 - rank)) - 1/2,
rounded, recovers the count exactly from a fast C function. Document length
is the number of distinct lexemes. The IDFs come from the planner's
statistics (search/searching.py).
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION search_bm25(vector tsvector, terms tsquery[], idfs float8[], average_length float8)
RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(sum(idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length(vector) / average_length))), 0)
    FROM (
        SELECT idf,
               greatest(round(1 / (1.6449341 * (1.0000001 - ts_rank('{1,1,1,1}'::float4[], vector, term, 0))) - 0.5), 0)
               AS tf
        FROM unnest(terms, idfs) AS t(term, idf)
    ) AS counted
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("search", "0008_search_vector_statistics")]

    operations = [
        migrations.RunSQL(FORWARD, "DROP FUNCTION search_bm25(tsvector, tsquery[], float8[], float8)")
    ]
