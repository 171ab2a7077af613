"""The local stack without Docker: Kafka (KRaft), PostgreSQL and anvil on loopback (`lc up`)."""
