"""Benchmarks: `sia bench` measures SIA through its public interfaces (engine, HTTP API,
console, delivery, preview, Kafka workers). Nothing in the core imports this package."""
