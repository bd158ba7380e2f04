"""Keep frequencies for many more lexemes in the planner's statistics.

Keyword ranking (search/searching.py) reads each query word's document
frequency from pg_stats.most_common_elems instead of counting matches; a
larger statistics target lists ten thousand lexemes rather than a thousand.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("search", "0007_search_triggers")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE search_patent ALTER COLUMN search_vector SET STATISTICS 10000; ANALYZE search_patent",
            "ALTER TABLE search_patent ALTER COLUMN search_vector SET STATISTICS -1",
        )
    ]
