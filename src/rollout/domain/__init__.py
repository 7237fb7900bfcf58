"""Pure rollout logic: states, planning, gate verdicts and conditions, with no I/O."""
