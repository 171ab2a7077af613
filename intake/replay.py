"""Single-use signatures that survive a restart: a small SQLite file of the signatures seen.

A signature is remembered until its timestamp leaves the window (after that the timestamp check
refuses it anyway), and expired entries are pruned at most once a minute.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

PRUNE_EVERY_MS = 60_000


class ReplayStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS used_signatures (signature TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL)")
        self._last_prune_ms = 0

    def first_use(self, signature: str, *, expires_ms: int, now_ms: int) -> bool:
        """Remember `signature`; True when it was not seen before (atomic across threads)."""
        with self._lock:
            if now_ms - self._last_prune_ms >= PRUNE_EVERY_MS:
                self._db.execute("DELETE FROM used_signatures WHERE expires_ms < ?", (now_ms,))
                self._last_prune_ms = now_ms
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO used_signatures (signature, expires_ms) VALUES (?, ?)", (signature, expires_ms)
            )
            return cursor.rowcount == 1

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM used_signatures").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
