"""The delivery rules, free of I/O: signatures, the retry schedule, what a response means,
subscription filters, per-lead ordering and the circuit breaker. Every function that depends
on time takes ``now`` as an argument."""
