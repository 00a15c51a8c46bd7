"""The reference scan service: a faithful model of the FastAPI + Redis scan
feature whose multi-worker bugs started this project, with every known bug and
fix as a switch (see docs/reference-service.md)."""
