//! medseal-chain (placeholder until its issue lands).
