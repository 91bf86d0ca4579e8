"""Pure building blocks of disaster warnings.

- `levels`: sensor readings → warning level (Normal / Waspada / Siaga / Awas) with hysteresis.
- `bmkg`: BMKG earthquake JSON and weather-nowcast RSS parsing, relevance rules, polling logic.
- `cap`: CAP 1.2 parsing (defusedxml) and building, Atom feed of our warnings.
- `audience`: who is inside a warning's area.

Nothing here does I/O, talks to storage or sends messages; the caller wires it up.
"""
