"""Helpers of the upload tests: a regex reading of XML attributes, hostile files."""

from __future__ import annotations

import re

ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')


def element_attributes(text: str, element: str) -> list[dict[str, str]]:
    """The attributes of every `<element ...>` in the text, by a plain regex pass."""
    return [dict(ATTRIBUTE.findall(match)) for match in re.findall(rf"<{element} ([^>]*?)/?>", text)]


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE HealthData [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<HealthData locale="en_US">
 <Record type="HKQuantityTypeIdentifierStepCount" sourceName="&lol3;" unit="count"
   startDate="2024-01-01 10:00:00 +0000" endDate="2024-01-01 10:01:00 +0000" value="10"/>
</HealthData>
"""

EXTERNAL_ENTITY_GPX = """<?xml version="1.0"?>
<!DOCTYPE gpx [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<gpx version="1.1" creator="x"><trk><name>&secret;</name><trkseg>
<trkpt lat="1" lon="1"><time>2024-01-01T10:00:00Z</time></trkpt></trkseg></trk></gpx>
"""
