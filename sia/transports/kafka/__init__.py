"""Scale-out transport: SIA as a Faust application on Apache Kafka.

Agents stay thin: decode, call the core (`sia.engine.partitions`), send. See
docs/SCALE_OUT.md for topics, state, recovery and delivery semantics.
"""
