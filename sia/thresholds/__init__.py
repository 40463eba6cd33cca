"""Thresholds as managers tune them: versions with who, when, why and the diff, changes
applied to the configuration's data, and the effective value of every threshold with
where it comes from."""
