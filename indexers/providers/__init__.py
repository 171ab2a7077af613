"""Provider evidence: API clients, normalized records, the evidence hash, token encryption,
identity bindings and the collector that publishes evidence facts to `lc.evidence`.

Pure parts (no I/O): `records` (normalization), `evidence_hash`, `crypto`, `identity`, and the
planning/dedup half of `collector`. I/O: `clients/` (httpx) and `collector.run_collector`.
"""
