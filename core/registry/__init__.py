"""Model registry and artifact store (SQLAlchemy; no torch import)."""
