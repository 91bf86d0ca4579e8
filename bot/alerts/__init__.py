"""Disaster warnings and announcements.

Pure building blocks (no I/O, no storage, nothing sent):

- `levels`: sensor readings → warning level (Normal / Waspada / Siaga / Awas) with hysteresis.
- `bmkg`: BMKG earthquake JSON and weather-nowcast RSS parsing, relevance rules, polling logic.
- `cap`: CAP 1.2 parsing (defusedxml) and building, Atom feed of our warnings.
- `audience`: who is inside a warning's area.
- `texts`: our languages, city names and local time in warning texts.

Wired to storage, each built once by `wiring.build_alerts` with what it needs:

- `broadcasts`: audiences, new broadcasts and warnings, fan-out into the outbox, schedule, cancel.
- `publishing`: the CAP document of each warning we send.
- `sensors`: sensor tokens, readings, level changes, silent sensors.
- `sources`: warnings from BMKG quakes and incoming CAP alerts.

Adapters: `http` (readings, CAP in, Atom and CAP out), `mqtt` (readings), `feeds` (BMKG
polling), `cli` (`lapor broadcast …`); `wiring` plugs all of it into `bot.app.App`.
"""
