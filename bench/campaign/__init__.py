"""Layer 4, the campaign: starting workers in their environments and scheduling their calls — the caller's side of
the calls, the timing campaign and the counting campaign. Never imports ``bench.report``."""
