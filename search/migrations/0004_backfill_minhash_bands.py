"""MinHash bands for the documents stored before search.MinHashBand existed."""

from django.db import migrations

from search import minhash


def backfill(apps, schema_editor):
    Patent = apps.get_model("search", "Patent")
    MinHashBand = apps.get_model("search", "MinHashBand")
    batch = []
    for patent in Patent.objects.only("id", "title", "abstract", "claims").iterator(chunk_size=500):
        text = minhash.document_text(patent.title, patent.abstract, patent.claims)
        keys = set(minhash.band_keys(minhash.signature(minhash.shingles(text))))
        batch += [MinHashBand(key=key, patent_id=patent.id) for key in keys]
        if len(batch) >= 10_000:
            MinHashBand.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    MinHashBand.objects.bulk_create(batch, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [("search", "0003_minhash_bands")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
