"""A title-and-abstract vector kept in the table row, to rank in tiers when a query matches too many.

STORAGE MAIN keeps it in the row (compressed if need be) rather than in
TOAST, so reading it for a thousand candidates costs no extra page reads.
"""

import django.contrib.postgres.indexes
import django.contrib.postgres.search
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("generation", "0002_generation_outputs"),
        ("search", "0009_bm25_function"),
    ]

    operations = [
        migrations.AddField(
            model_name="patent",
            name="title_abstract_vector",
            field=models.GeneratedField(
                db_persist=True,
                expression=django.contrib.postgres.search.CombinedSearchVector(
                    django.contrib.postgres.search.SearchVector("title", config="english", weight="A"),
                    "||",
                    django.contrib.postgres.search.SearchVector("abstract", config="english", weight="B"),
                    django.contrib.postgres.search.SearchConfig("english"),
                ),
                output_field=django.contrib.postgres.search.SearchVectorField(),
            ),
        ),
        migrations.RunSQL(
            "ALTER TABLE search_patent ALTER COLUMN title_abstract_vector SET STORAGE MAIN",
            "ALTER TABLE search_patent ALTER COLUMN title_abstract_vector SET STORAGE EXTENDED",
        ),
        migrations.AddIndex(
            model_name="patent",
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["title_abstract_vector"], name="patent_title_abstract_gin"
            ),
        ),
    ]
