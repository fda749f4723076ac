# L2 coherence engine (optional, ADR-132 DC-1): communication graph, budgeted
# mincut, scores and pressure, split/merge, migration. L1 never imports this.
