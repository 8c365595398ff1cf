"""Encoders to embeddings: text prototypes, skeleton encoders (and, later, video encoders)."""
