"""File uploads (Apple Health, Garmin, Google Fit) turned into evidence facts.

Pure parsing: `apple`, `garmin`, `googlefit` (each: stream in, normalized records out), `detect`
(`detect_and_parse`, the upload evidence hash). I/O: `auth` + `replay` (wallet signature headers),
`storage` (content-addressed raw files), `server` (`POST /v1/uploads`), `client` (`upload_file`),
`publish` (the `lc.evidence` publisher).
"""
