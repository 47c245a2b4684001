"""Tamper evidence: a Merkle log per account over its events (RFC 6962), signed checkpoints
(C2SP signed-note, tlog-checkpoint), tiles (C2SP tlog-tiles), proofs, and offline verification."""
