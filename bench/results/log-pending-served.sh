#!/bin/bash
# 1M events as 10 `trailhouse ingest` runs of 100k, the sequencer logging each before the next (as serve's would, coarser)
src=$1; db=$2
cd /work/wt-leafq
rm -f $db $db-wal $db-shm
for p in /tmp/leafq/parts/part-*; do
  PYTHONPATH=$src .venv/bin/python -m trailhouse ingest --db sqlite:///$db --json --workers 1 $p > /dev/null
  PYTHONPATH=$src .venv/bin/python -c "
from trailhouse.storage import open_store
from trailhouse.service.integrity.log import SEQUENCE_BATCH, sequence
from trailhouse.service.integrity.note import generate_signer
from trailhouse.model.times import now_ms
s = open_store('sqlite:///$db'); g = generate_signer('bench')
while sequence(s, g, now_ms, limit=SEQUENCE_BATCH): pass
s.close()"
done
PYTHONPATH=$src .venv/bin/python -m bench.log_bytes --db sqlite:///$db --out /tmp/leafq/lb-1m-served.json > /dev/null
