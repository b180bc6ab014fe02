//! medseal-storage (placeholder until its issue lands).
