"""Indexers: facts from outside the pipeline (the chain, provider APIs, uploads) published to Kafka."""
