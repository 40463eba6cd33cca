"""Use cases: what the CLI, the HTTP API and the benchmarks all call.

Each module is one thing a user does: replay a file (`replay`), run the live engine
(`live`), receive events (`receivers`), read alerts (`alerts`) and customers
(`customers`), deliver (`delivery`), hold alerts back (`holds`), manage API keys
(`keys`). Nothing here knows about HTTP, the terminal or Kafka: the interfaces at the
edge (`sia.cli`, `sia.api`) and the transports (`sia.transports`) call these.
"""
