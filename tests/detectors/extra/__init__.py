"""Extra synthetic events for detectors that need more than orders and interactions.

Each module here defines `events(rng: random.Random) -> list[Event]` (deterministic,
from the rng given) and is merged into the contract-test stream, so every registered
detector can show it produces findings without editing the shared stream. Event ids
must be unique across modules: prefix them with the module name.
"""
