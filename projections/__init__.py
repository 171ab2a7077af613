"""Projectors: Kafka topics materialised into the PostgreSQL tables the web app reads."""
