"""Push a run's dataset to an Oxen repository over its HTTP API: the training JSONL, the TDF record
and the run's metadata, committed under runs/<run id>/. Nothing leaves the machine unless the
exporter is enabled and OXEN_API_KEY is set."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import httpx

from ..config import OxenConfig

log = logging.getLogger(__name__)

KEY_ENV = "OXEN_API_KEY"
UPLOADED = ("training.jsonl", "run.tdf.json", "run.json")


def upload(cfg: OxenConfig, run_dir: Path, run_id: str, transport: httpx.BaseTransport | None = None) -> list[str]:
    """Upload the run's files that exist (any compression); returns their remote paths."""
    key = os.environ.get(KEY_ENV)
    if not (cfg.enabled and key):
        return []
    namespace, name = cfg.repo.split("/", 1)
    files = [p for p in sorted(run_dir.iterdir())
             if p.is_file() and p.name.removesuffix(".gz").removesuffix(".bz2") in UPLOADED]
    remote_dir = f"runs/{run_id}"
    with httpx.Client(base_url=cfg.host, headers={"Authorization": f"Bearer {key}"}, timeout=60,
                      transport=transport) as client:
        created = client.post("/api/repos", json={"namespace": namespace, "name": name,
                                                  "description": "Timepoint datasets"})
        if created.status_code not in (200, 201, 409):
            created.raise_for_status()
        for path in files:
            client.put(f"/api/repos/{namespace}/{name}/file/{cfg.branch}/{remote_dir}",
                       files={"file": (path.name, path.read_bytes())},
                       data={"message": f"Timepoint run {run_id}: {path.name}", "name": "Timepoint",
                             "email": "timepoint@localhost"}).raise_for_status()
    log.info("oxen: uploaded %d files to %s/%s", len(files), cfg.repo, remote_dir)
    return [f"{remote_dir}/{p.name}" for p in files]
