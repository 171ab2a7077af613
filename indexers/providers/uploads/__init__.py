"""File uploads (Apple Health, Garmin, Google Fit) turned into evidence facts on `lc.evidence`.

Pure parsing (a byte stream in, normalized records out, no other I/O): `record` (the shared record
shape), `apple`, `garmin`, `googlefit`, `safexml` (expat that refuses entities), `detect`
(`detect_and_parse`, the upload evidence hash), `errors` (why an upload is refused).
I/O: `auth` + `replay` (wallet signature headers, single use across restarts), `storage`
(streamed, size-limited, content-addressed raw files), `server` (`POST /v1/uploads`), `client`
(`upload_file`, for `lc upload FILE`), `publish` (`make_publisher`: EvidenceSubmitted on lc.evidence).
"""
