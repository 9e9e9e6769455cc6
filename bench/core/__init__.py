"""Layer 2, the core: errors, the case and its settings, typed records, the wire codec, task data, the agreement
rule, the noise model and statistics. Imports no framework: it runs in every process, the caller's included."""
